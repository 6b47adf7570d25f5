import { Badge, type BadgeProps } from "@mantine/core";
import type { ReactNode } from "react";

/**
 * A badge that keeps its whole label: Mantine's clips with an ellipsis when a table
 * column is narrow ("SUCC…"), and a status must be read in full.
 */
export function FitBadge({ style, ...props }: BadgeProps & { children?: ReactNode; title?: string }) {
  return <Badge variant="light" style={{ minWidth: "max-content", ...(style as object) }} {...props} />;
}
