import { SegmentedControl, Stack } from "@mantine/core";
import { useState } from "react";
import { AuditTable } from "../audit/AuditTable";

type Side = "target" | "actor";

/** What happened to a user, or what they did: two views of the same trail. */
export function UserAudit({ userId, allowed }: { userId: string; allowed: boolean }) {
  const [side, setSide] = useState<Side>("target");
  const query = side === "target" ? { target_id: userId } : { actor_id: userId };
  return (
    <Stack gap="sm">
      {allowed && (
        <SegmentedControl
          aria-label="Which events"
          value={side}
          onChange={(value) => setSide(value as Side)}
          data={[
            { value: "target", label: "About this user" },
            { value: "actor", label: "By this user" },
          ]}
          style={{ alignSelf: "flex-start" }}
        />
      )}
      <AuditTable
        query={query}
        allowed={allowed}
        label={side === "target" ? "Events about this user" : "Events by this user"}
        emptyText={
          side === "target" ? "Nothing has been recorded about this user." : "This user has done nothing recorded."
        }
      />
    </Stack>
  );
}
