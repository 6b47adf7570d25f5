import { AppShell, Button, Group, NavLink, Text, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useEffect, useState } from "react";
import { Outlet, NavLink as RouterNavLink, useLocation } from "react-router";
import type { Role } from "../shared/api";
import { useAuth } from "../shared/auth";
import { MenuBurger } from "../shared/MenuBurger";
import { canReadOverview } from "./permissions";
import { RoleBadge } from "./users/RoleBadge";

const SECTIONS: { to: string; label: string; shownTo?: (role: Role | undefined) => boolean }[] = [
  // A readonly admin may not see it: the section is left out, not refused on click.
  { to: "/", label: "Overview", shownTo: canReadOverview },
  { to: "/users", label: "Users" },
  { to: "/clients", label: "Clients" },
  { to: "/audit", label: "Audit trail" },
  { to: "/webhooks", label: "Webhooks" },
];

export function Layout() {
  const { user, logout } = useAuth();
  const [opened, { toggle, close }] = useDisclosure(false);
  const [leaving, setLeaving] = useState(false);
  const { pathname } = useLocation();
  // A tap on a section closes the phone menu: the page is what they came for.
  // biome-ignore lint/correctness/useExhaustiveDependencies: the path is the trigger, not an input
  useEffect(close, [pathname, close]);

  return (
    <AppShell
      header={{ height: 60 }}
      navbar={{ width: 220, breakpoint: "sm", collapsed: { mobile: !opened } }}
      padding={{ base: "sm", sm: "lg" }}
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap" gap="xs">
          <Group gap="sm" wrap="nowrap">
            <MenuBurger opened={opened} onToggle={toggle} />
            <Title order={1} fz={{ base: "md", sm: "lg" }} style={{ whiteSpace: "nowrap" }}>
              Gatehouse admin
            </Title>
          </Group>
          <Group gap="xs" wrap="nowrap">
            <Text fz="sm" visibleFrom="sm" truncate maw={240}>
              {user?.name}
            </Text>
            {user && <RoleBadge role={user.role} visibleFrom="xs" />}
            <Button
              variant="default"
              size="xs"
              loading={leaving}
              onClick={async () => {
                setLeaving(true);
                await logout().finally(() => setLeaving(false));
              }}
            >
              Log out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>

      <AppShell.Navbar p="sm" aria-label="Sections">
        {SECTIONS.filter((section) => section.shownTo?.(user?.role) ?? true).map((section) => (
          <NavLink
            key={section.to}
            component={RouterNavLink}
            to={section.to}
            label={section.label}
            active={pathname === section.to || (section.to !== "/" && pathname.startsWith(`${section.to}/`))}
            onClick={close}
            style={{ borderRadius: "var(--mantine-radius-md)" }}
          />
        ))}
        {user && (
          <Group gap="xs" mt="auto" hiddenFrom="sm" wrap="nowrap">
            <Text fz="sm" c="dimmed" truncate>
              Logged in as {user.name}
            </Text>
            <RoleBadge role={user.role} />
          </Group>
        )}
      </AppShell.Navbar>

      <AppShell.Main>
        <div style={{ maxWidth: 1200, margin: "0 auto" }}>
          <Outlet />
        </div>
      </AppShell.Main>
    </AppShell>
  );
}
