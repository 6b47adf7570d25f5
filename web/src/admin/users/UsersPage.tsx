import {
  Anchor,
  Button,
  Checkbox,
  Group,
  Loader,
  Pagination,
  Paper,
  Select,
  Stack,
  Table,
  Text,
  Title,
  UnstyledButton,
} from "@mantine/core";
import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import type { AdminUser } from "../../shared/api";
import { formatDateTime } from "../../shared/format";
import { ErrorText } from "../../shared/ui";
import { FitBadge } from "../FitBadge";
import { usePermissions } from "../permissions";
import { usePageTitle } from "../usePageTitle";
import { CreateUserModal } from "./CreateUserModal";
import { rememberListSearch } from "./lastListSearch";
import { useUsersList } from "./queries";
import { RoleBadge } from "./RoleBadge";
import { SearchBox } from "./SearchBox";
import {
  PAGE_SIZES,
  ROLES,
  readUsersState,
  type SortField,
  sortBy,
  toListQuery,
  type UsersState,
  withFilter,
  writeUsersState,
} from "./usersState";

function SortHeader({
  field,
  label,
  state,
  onSort,
}: {
  field: SortField;
  label: string;
  state: UsersState;
  onSort: (field: SortField) => void;
}) {
  const active = state.sortBy === field;
  const direction = state.order === "asc" ? "ascending" : "descending";
  return (
    <Table.Th aria-sort={active ? direction : "none"}>
      <UnstyledButton
        onClick={() => onSort(field)}
        title={active ? `Sorted ${direction}; click to reverse` : `Sort by ${label.toLowerCase()}`}
        fw={600}
        fz="sm"
        style={{ display: "inline-flex", gap: 4, alignItems: "center" }}
      >
        {label}
        <Text span c={active ? "indigo" : "dimmed"} fz="xs" aria-hidden>
          {active ? (state.order === "asc" ? "▲" : "▼") : "↕"}
        </Text>
      </UnstyledButton>
    </Table.Th>
  );
}

/** The day in the table (the full time on hover): three timestamps must fit one row. */
function DateCell({ value, empty = "—" }: { value: string | null; empty?: string }) {
  if (!value) return <Table.Td c="dimmed">{empty}</Table.Td>;
  const date = new Date(value);
  return (
    <Table.Td style={{ whiteSpace: "nowrap" }} title={formatDateTime(value)}>
      {date.toLocaleDateString(undefined, { dateStyle: "medium" })}
    </Table.Td>
  );
}

function UserRow({ user }: { user: AdminUser }) {
  const navigate = useNavigate();
  const to = `/users/${user.id}`;
  // A deleted user no longer answers GET /users/{id}: its page starts from this row.
  const state = user.deleted_at ? { deletedUser: user } : undefined;
  return (
    <Table.Tr style={{ cursor: "pointer" }} onClick={() => navigate(to, { state })}>
      <Table.Td style={{ whiteSpace: "nowrap" }}>
        <Anchor component={Link} to={to} state={state} fw={500} onClick={(event) => event.stopPropagation()}>
          {user.name}
        </Anchor>
        {user.deleted_at && (
          <FitBadge ml="xs" color="red" size="sm">
            deleted
          </FitBadge>
        )}
      </Table.Td>
      <Table.Td>{user.email}</Table.Td>
      <Table.Td>
        <RoleBadge role={user.role} />
      </Table.Td>
      <DateCell value={user.created_at} />
      <DateCell value={user.updated_at} />
      <DateCell value={user.last_login_at} empty="Never" />
    </Table.Tr>
  );
}

const ROLE_OPTIONS = [{ value: "all", label: "All roles" }, ...ROLES.map((role) => ({ value: role, label: role }))];
const SIZE_OPTIONS = PAGE_SIZES.map((size) => ({ value: String(size), label: `${size} per page` }));

export function UsersPage() {
  usePageTitle("Users");
  const { canWrite } = usePermissions();
  const [params, setParams] = useSearchParams();
  // Deleted users are for admins (readonly gets 403): a pasted ?deleted=1 is ignored.
  const state = useMemo(() => {
    const read = readUsersState(params);
    return canWrite ? read : { ...read, includeDeleted: false };
  }, [params, canWrite]);
  const [creating, setCreating] = useState(false);
  const update = (next: UsersState, replace = false) => setParams(writeUsersState(next), { replace });
  useEffect(() => rememberListSearch(params.toString()), [params]);

  const list = useUsersList(toListQuery(state));

  const meta = list.data?.meta;
  const users = list.data?.data ?? [];
  const total = meta?.total_count ?? 0;

  return (
    <Stack>
      <Group justify="space-between" align="center">
        <Title order={2}>Users</Title>
        {canWrite && <Button onClick={() => setCreating(true)}>Create user</Button>}
      </Group>

      <Group align="flex-end" gap="sm" wrap="wrap">
        <SearchBox value={state.search} onSearch={(search) => update(withFilter(state, { search }), true)} />
        <Select
          label="Role"
          data={ROLE_OPTIONS}
          value={state.role ?? "all"}
          allowDeselect={false}
          onChange={(value) =>
            update(withFilter(state, { role: value && value !== "all" ? (value as UsersState["role"]) : null }))
          }
          w={150}
        />
        {canWrite && (
          <Checkbox
            label="Show deleted users"
            checked={state.includeDeleted}
            onChange={(event) => update(withFilter(state, { includeDeleted: event.currentTarget.checked }))}
            mb={8}
          />
        )}
      </Group>

      <ErrorText error={list.error} />

      <Paper withBorder radius="md" pos="relative">
        <Table.ScrollContainer minWidth={760} type="native">
          <Table
            highlightOnHover
            verticalSpacing="sm"
            horizontalSpacing="md"
            aria-label="Users"
            aria-busy={list.isFetching}
          >
            <Table.Thead>
              <Table.Tr>
                <SortHeader field="name" label="Name" state={state} onSort={(f) => update(sortBy(state, f))} />
                <SortHeader field="email" label="Email" state={state} onSort={(f) => update(sortBy(state, f))} />
                <SortHeader field="role" label="Role" state={state} onSort={(f) => update(sortBy(state, f))} />
                <SortHeader field="created_at" label="Created" state={state} onSort={(f) => update(sortBy(state, f))} />
                <SortHeader field="updated_at" label="Updated" state={state} onSort={(f) => update(sortBy(state, f))} />
                <Table.Th style={{ whiteSpace: "nowrap" }}>Last login</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {users.map((user) => (
                <UserRow key={user.id} user={user} />
              ))}
              {list.isSuccess && users.length === 0 && (
                <Table.Tr>
                  <Table.Td colSpan={6}>
                    <Text c="dimmed" ta="center" py="lg">
                      {state.page > 1 && total > 0 ? "This page is past the end of the list." : "No users match."}
                    </Text>
                  </Table.Td>
                </Table.Tr>
              )}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
        {list.isPending && (
          <Group justify="center" py="lg">
            <Loader size="sm" aria-label="Loading users" />
          </Group>
        )}
      </Paper>

      {meta && (
        <Group justify="space-between" gap="sm">
          <Group gap="sm">
            <Text fz="sm" c="dimmed" aria-live="polite">
              {total === 1 ? "1 user" : `${total} users`}
            </Text>
            {list.isFetching && !list.isPending && <Loader size="xs" aria-label="Loading" />}
          </Group>
          <Group gap="sm">
            <Select
              aria-label="Users per page"
              data={SIZE_OPTIONS}
              value={String(state.pageSize)}
              allowDeselect={false}
              onChange={(value) => update(withFilter(state, { pageSize: Number(value) }))}
              w={140}
              size="xs"
            />
            {meta.total_pages > 1 && (
              <Pagination
                total={meta.total_pages}
                value={Math.min(state.page, meta.total_pages)}
                onChange={(page) => update({ ...state, page })}
                size="sm"
                siblings={1}
                boundaries={1}
                getItemProps={(page) => ({
                  "aria-label": `Page ${page}`,
                  "aria-current": page === state.page ? "page" : undefined,
                })}
                getControlProps={(control) => ({
                  "aria-label": `${control.charAt(0).toUpperCase()}${control.slice(1)} page`,
                })}
              />
            )}
          </Group>
        </Group>
      )}

      {canWrite && <CreateUserModal opened={creating} onClose={() => setCreating(false)} />}
    </Stack>
  );
}
