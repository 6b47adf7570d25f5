import { Text } from "@mantine/core";
import type { ReactNode } from "react";

/** A read-only value under a small label: "ROLE / admin". Long values wrap anywhere. */
export function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <Text fz="xs" c="dimmed" tt="uppercase" fw={600}>
        {label}
      </Text>
      <Text component="div" mt={2} style={{ overflowWrap: "anywhere" }}>
        {children}
      </Text>
    </div>
  );
}
