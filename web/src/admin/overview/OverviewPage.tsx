import { BarChart, DonutChart } from "@mantine/charts";
import { Button, Group, Loader, Paper, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { type ReactNode, useId } from "react";
import type { Role } from "../../shared/api";
import { ErrorText } from "../../shared/ui";
import { usePermissions } from "../permissions";
import { usePageTitle } from "../usePageTitle";
import { RoleBadge } from "../users/RoleBadge";
import { chartRows, dayLabel, formatAge, formatCount, hourLabel, SERIES } from "./overviewFormat";
import { type Activity, type Overview, useOverview } from "./queries";

export const OVERVIEW_REFUSED = "Your role cannot see the overview.";

const ROLES: { role: Role; color: string }[] = [
  { role: "user", color: "gray.5" },
  { role: "admin", color: "indigo.6" },
  { role: "readonly", color: "grape.6" },
];

export function OverviewPage() {
  usePageTitle("Overview");
  const { canReadOverview } = usePermissions();
  const overview = useOverview(canReadOverview);

  return (
    <Stack>
      <Group justify="space-between" align="baseline" gap="xs">
        <Title order={2}>Overview</Title>
        {overview.data && (
          <Text c="dimmed" fz="sm">
            Updated {new Date(overview.data.generated_at).toLocaleTimeString(undefined, { timeStyle: "short" })}
            {" · "}hours and days in UTC
          </Text>
        )}
      </Group>
      {!canReadOverview ? (
        <Text>{OVERVIEW_REFUSED} Only admins can see it.</Text>
      ) : (
        <>
          {overview.error && (
            <Stack gap="xs" align="flex-start">
              <ErrorText error={overview.error} title="The overview could not be loaded" />
              <Button variant="default" size="xs" onClick={() => overview.refetch()} loading={overview.isFetching}>
                Try again
              </Button>
            </Stack>
          )}
          {overview.isPending && <Loader size="sm" aria-label="Loading the overview" />}
          {overview.data && <OverviewFigures overview={overview.data} />}
        </>
      )}
    </Stack>
  );
}

function OverviewFigures({ overview }: { overview: Overview }) {
  const day = overview.last_24_hours.totals;
  return (
    <>
      <SimpleGrid cols={{ base: 2, sm: 4 }} spacing={{ base: "xs", sm: "md" }}>
        <Stat
          label="Sign-ups, 24 h"
          value={day.signups}
          hint={day.signups_failed ? `${formatCount(day.signups_failed)} refused` : undefined}
        />
        <Stat label="Logins, 24 h" value={day.logins} />
        <Stat label="Failed logins, 24 h" value={day.logins_failed} alert={day.logins_failed > 0} />
        <Stat label="Active sessions" value={overview.sessions.active} />
      </SimpleGrid>

      <SimpleGrid cols={{ base: 1, sm: 3 }} spacing={{ base: "xs", sm: "md" }}>
        <UsersByRole users={overview.users} />
        <Backlog
          title="Outbox"
          count={overview.outbox.pending_dispatch}
          what="events waiting for their webhooks and emails"
          oldest={overview.outbox.oldest_undispatched_seconds}
        >
          {overview.outbox.pending_publish !== null && (
            <Text fz="sm">
              {formatCount(overview.outbox.pending_publish)} not yet published to the broker
              {overview.outbox.oldest_unpublished_seconds !== null &&
                ` (oldest ${formatAge(overview.outbox.oldest_unpublished_seconds)})`}
            </Text>
          )}
        </Backlog>
        <Backlog
          title="Webhook deliveries"
          count={overview.webhooks.pending_deliveries}
          what="pending, retries included"
          oldest={overview.webhooks.oldest_pending_seconds}
        />
      </SimpleGrid>

      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <ActivityChart
          title="Logins per hour, last 24 hours"
          activity={overview.last_24_hours}
          label={hourLabel}
          kind="logins"
        />
        <ActivityChart
          title="Logins per day, last 30 days"
          activity={overview.last_30_days}
          label={dayLabel}
          kind="logins"
        />
        <ActivityChart
          title="Sign-ups per hour, last 24 hours"
          activity={overview.last_24_hours}
          label={hourLabel}
          kind="signups"
        />
        <ActivityChart
          title="Sign-ups per day, last 30 days"
          activity={overview.last_30_days}
          label={dayLabel}
          kind="signups"
        />
      </SimpleGrid>
    </>
  );
}

/** A figure with its name: a screen reader hears the label, then the number. */
function Card({ label, children }: { label: string; children: ReactNode }) {
  const id = useId();
  return (
    <Paper withBorder p={{ base: "sm", sm: "md" }} role="group" aria-labelledby={id} miw={0}>
      <Text id={id} fz="xs" c="dimmed" tt="uppercase" fw={700}>
        {label}
      </Text>
      {children}
    </Paper>
  );
}

function Big({ value, color }: { value: number; color?: string }) {
  return (
    <Text fz={{ base: 24, sm: 28 }} fw={700} lh={1.25} c={color}>
      {formatCount(value)}
    </Text>
  );
}

function Stat({ label, value, hint, alert }: { label: string; value: number; hint?: string; alert?: boolean }) {
  return (
    <Card label={label}>
      <Big value={value} color={alert ? "red.7" : undefined} />
      {hint && (
        <Text fz="xs" c="dimmed">
          {hint}
        </Text>
      )}
    </Card>
  );
}

function ActivityChart({
  title,
  activity,
  label,
  kind,
}: {
  title: string;
  activity: Activity;
  label: (start: string) => string;
  kind: "logins" | "signups";
}) {
  const id = useId();
  const totals = activity.totals;
  const [done, failed] =
    kind === "logins" ? [totals.logins, totals.logins_failed] : [totals.signups, totals.signups_failed];
  const words = kind === "logins" ? ["logins", "failed"] : ["sign-ups", "refused"];
  return (
    <Paper withBorder p={{ base: "sm", sm: "md" }} role="figure" aria-labelledby={id} miw={0}>
      <Text id={id} fw={600} fz="sm">
        {title}
      </Text>
      <Text fz="sm" c="dimmed" mb="xs">
        {formatCount(done)} {words[0]}, {formatCount(failed)} {words[1]}
      </Text>
      {done + failed === 0 ? (
        <Text fz="sm" c="dimmed" py="xl" ta="center">
          No {words[0]} in this time.
        </Text>
      ) : (
        <BarChart
          h={200}
          data={chartRows(activity, label)}
          dataKey="label"
          series={SERIES[kind]}
          type="stacked"
          withLegend
          legendProps={{ verticalAlign: "bottom", height: 36 }}
          xAxisProps={{ minTickGap: 16 }}
          yAxisProps={{ width: 40, allowDecimals: false }}
          valueFormatter={formatCount}
          tooltipAnimationDuration={0}
        />
      )}
    </Paper>
  );
}

function UsersByRole({ users }: { users: Overview["users"] }) {
  const data = ROLES.map(({ role, color }) => ({ name: role, value: users.by_role[role], color }));
  return (
    <Card label="Users">
      <Big value={users.total} />
      <Group gap="md" wrap="nowrap" mt="xs">
        {users.total > 0 && (
          <DonutChart data={data} size={84} thickness={14} withTooltip={false} paddingAngle={2} aria-hidden />
        )}
        <Stack gap={4} miw={0}>
          {data.map(({ name, value }) => (
            <Group key={name} gap="xs" wrap="nowrap" aria-label={`${name}: ${formatCount(value)}`}>
              <RoleBadge role={name} />
              <Text fz="sm" fw={600}>
                {formatCount(value)}
              </Text>
            </Group>
          ))}
        </Stack>
      </Group>
    </Card>
  );
}

function Backlog({
  title,
  count,
  what,
  oldest,
  children,
}: {
  title: string;
  count: number;
  what: string;
  oldest: number | null;
  children?: ReactNode;
}) {
  return (
    <Card label={title}>
      <Big value={count} color={count > 0 ? "orange.8" : undefined} />
      <Text fz="sm">{what}</Text>
      <Text fz="sm" c="dimmed">
        {oldest === null ? "Nothing waiting" : `Oldest waiting ${formatAge(oldest)}`}
      </Text>
      {children}
    </Card>
  );
}
