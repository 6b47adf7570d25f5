import { Anchor, Button, Group, Loader, Pagination, Paper, Stack, Table, Text, Title } from "@mantine/core";
import { Link, useNavigate, useSearchParams } from "react-router";
import { ApiError } from "../../shared/errors";
import { ErrorText } from "../../shared/ui";
import { FitBadge } from "../FitBadge";
import { usePermissions } from "../permissions";
import { usePageTitle } from "../usePageTitle";
import { ClientStatus } from "./ClientStatus";
import { useClients } from "./queries";

export const CLIENTS_REFUSED = "Your role cannot see clients.";

export function ClientsPage() {
  usePageTitle("Clients");
  const { canWrite } = usePermissions();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);

  const list = useClients(page);
  const refused = list.error instanceof ApiError && list.error.status === 403;
  const clients = list.data?.data ?? [];
  const meta = list.data?.meta;

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Clients</Title>
        {canWrite && (
          <Button component={Link} to="/clients/new">
            Register client
          </Button>
        )}
      </Group>
      <Text c="dimmed" fz="sm">
        Applications that let people log in with Gatehouse (OpenID Connect), and services that call it for themselves.
      </Text>

      {refused ? <Text>{CLIENTS_REFUSED}</Text> : <ErrorText error={list.error} />}
      {list.isPending && <Loader size="sm" aria-label="Loading clients" />}

      {list.isSuccess && clients.length === 0 && (
        <Paper withBorder p="lg">
          <Text c="dimmed" ta="center">
            No clients yet.{canWrite ? " Register one to let an application use Gatehouse for its logins." : ""}
          </Text>
        </Paper>
      )}

      {clients.length > 0 && (
        <Paper withBorder>
          <Table.ScrollContainer minWidth={760} type="native">
            <Table highlightOnHover verticalSpacing="sm" horizontalSpacing="md" aria-label="Clients">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Name</Table.Th>
                  <Table.Th>Type</Table.Th>
                  <Table.Th>client_id</Table.Th>
                  <Table.Th>Trusted</Table.Th>
                  <Table.Th>Status</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {clients.map((client) => (
                  <Table.Tr
                    key={client.id}
                    style={{ cursor: "pointer" }}
                    onClick={() => navigate(`/clients/${client.id}`)}
                  >
                    <Table.Td style={{ maxWidth: 280, overflowWrap: "anywhere" }}>
                      <Anchor
                        component={Link}
                        to={`/clients/${client.id}`}
                        onClick={(event) => event.stopPropagation()}
                      >
                        {client.name}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>{client.type}</Table.Td>
                    <Table.Td ff="monospace" fz="sm">
                      {client.client_id}
                    </Table.Td>
                    <Table.Td>
                      {client.trusted ? (
                        <FitBadge color="indigo">trusted</FitBadge>
                      ) : (
                        <Text span c="dimmed" fz="sm">
                          no
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td>
                      <ClientStatus enabled={client.enabled} />
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        </Paper>
      )}

      {meta && meta.total_pages > 1 && (
        <Group justify="flex-end">
          <Pagination
            total={meta.total_pages}
            value={page}
            onChange={(next) => setParams(next === 1 ? {} : { page: String(next) })}
            size="sm"
            getItemProps={(n) => ({ "aria-label": `Page ${n}` })}
            getControlProps={(control) => ({
              "aria-label": `${control.charAt(0).toUpperCase()}${control.slice(1)} page`,
            })}
          />
        </Group>
      )}
    </Stack>
  );
}
