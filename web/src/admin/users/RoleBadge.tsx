import type { BadgeProps } from "@mantine/core";
import type { Role } from "../../shared/api";
import { FitBadge } from "../FitBadge";

const COLORS: Record<Role, string> = { admin: "indigo", readonly: "grape", user: "gray" };

export function RoleBadge({ role, ...props }: { role: Role } & BadgeProps) {
  return (
    <FitBadge color={COLORS[role]} {...props}>
      {role}
    </FitBadge>
  );
}
