import { Button, Group, Paper, Select, SimpleGrid, Stack, Text, TextInput, Title } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useEffect, useMemo } from "react";
import { useSearchParams } from "react-router";
import { usePermissions } from "../permissions";
import { usePageTitle } from "../usePageTitle";
import { AUDIT_REFUSED, AuditTable } from "./AuditTable";
import {
  type AuditFilters,
  EMPTY_FILTERS,
  filterProblems,
  hasFilters,
  OUTCOMES,
  readAuditFilters,
  toAuditQuery,
  writeAuditFilters,
} from "./auditFilters";

const OUTCOME_OPTIONS = [{ value: "any", label: "Any outcome" }, ...OUTCOMES.map((o) => ({ value: o, label: o }))];

export function AuditPage() {
  usePageTitle("Audit trail");
  const { canReadAudit } = usePermissions();
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => readAuditFilters(params), [params]);
  const query = useMemo(() => toAuditQuery(filters), [filters]);

  const form = useForm<AuditFilters>({ initialValues: filters, validate: (values) => filterProblems(values) });
  // Back and forward change the URL under the form: show what is applied.
  // biome-ignore lint/correctness/useExhaustiveDependencies: the form object is new at every render; only the URL's filters should reset it
  useEffect(() => {
    form.setValues(filters);
    form.resetDirty(filters);
  }, [filters]);

  const apply = form.onSubmit((values) => setParams(writeAuditFilters(values)));
  const clear = () => {
    form.setValues(EMPTY_FILTERS);
    setParams(new URLSearchParams());
  };

  return (
    <Stack>
      <Title order={2}>Audit trail</Title>
      {!canReadAudit ? (
        <Text>{AUDIT_REFUSED} Only admins can read it.</Text>
      ) : (
        <>
          <Paper withBorder p="md">
            <form onSubmit={apply} aria-label="Filter the audit trail">
              <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }}>
                <TextInput
                  label="Action"
                  placeholder="auth.login"
                  description="A prefix: auth. selects every sign-in and account event"
                  {...form.getInputProps("action")}
                />
                <Select
                  label="Outcome"
                  data={OUTCOME_OPTIONS}
                  allowDeselect={false}
                  value={form.values.outcome ?? "any"}
                  onChange={(value) =>
                    form.setFieldValue("outcome", value && value !== "any" ? (value as AuditFilters["outcome"]) : null)
                  }
                />
                <TextInput label="Actor ID" placeholder="Who acted (a user id)" {...form.getInputProps("actorId")} />
                <TextInput label="Target ID" placeholder="What was acted on" {...form.getInputProps("targetId")} />
                <TextInput
                  label="From"
                  type="datetime-local"
                  step={1}
                  description="Your local time"
                  {...form.getInputProps("since")}
                />
                <TextInput
                  label="Until"
                  type="datetime-local"
                  step={1}
                  description="Not included"
                  {...form.getInputProps("until")}
                />
                <TextInput label="Request ID" placeholder="X-Request-ID" {...form.getInputProps("requestId")} />
                <Group align="flex-end" gap="sm">
                  <Button type="submit">Apply filters</Button>
                  <Button variant="default" onClick={clear} disabled={!hasFilters(filters) && !form.isDirty()}>
                    Clear
                  </Button>
                </Group>
              </SimpleGrid>
            </form>
          </Paper>
          <AuditTable query={query} allowed label="Audit events" emptyText="No events match these filters." />
        </>
      )}
    </Stack>
  );
}
