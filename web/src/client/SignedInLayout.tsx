import { AppShell, Button, Container, Group, NavLink, Stack, Text, Title } from "@mantine/core";
import { useDisclosure, useMediaQuery } from "@mantine/hooks";
import { useState } from "react";
import { Link, Outlet, useLocation, useNavigate } from "react-router";
import { useAuth } from "../shared/auth";
import { describeError } from "../shared/errors";
import { MenuBurger } from "../shared/MenuBurger";
import { notifyFailure } from "../shared/notify";

const LINKS = [
  { to: "/", label: "Profile" },
  { to: "/password", label: "Password" },
  { to: "/security", label: "Security" },
  { to: "/sessions", label: "Sessions" },
  { to: "/data", label: "Your data" },
] as const;

export function SignedInLayout() {
  const [opened, { toggle, close }] = useDisclosure(false);
  const { user, logout } = useAuth();
  const { pathname } = useLocation();
  const navigate = useNavigate();
  const [leaving, setLeaving] = useState(false);
  // Mantine only slides a closed menu out of sight; inert also keeps its links out of
  // the tab order and away from screen readers until the burger opens it.
  const phone = useMediaQuery("(max-width: 47.99em)");
  const hidden = Boolean(phone) && !opened;

  async function logOut() {
    setLeaving(true);
    try {
      await logout();
      navigate("/login", { replace: true });
    } catch (error) {
      setLeaving(false);
      notifyFailure({ title: "Could not log out", message: describeError(error) });
    }
  }

  const staff = user?.role === "admin" || user?.role === "readonly";

  return (
    <AppShell
      header={{ height: 60 }}
      navbar={{ width: 230, breakpoint: "sm", collapsed: { mobile: !opened } }}
      padding="md"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <MenuBurger opened={opened} onToggle={toggle} />
            <Title order={2} size="h3" c="indigo.7">
              Gatehouse
            </Title>
          </Group>
          <Group gap="md" wrap="nowrap">
            <Text fw={500} visibleFrom="sm" truncate maw={260}>
              {user?.name}
            </Text>
            <Button variant="default" size="sm" onClick={logOut} loading={leaving}>
              Log out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>

      <AppShell.Navbar p="sm" component="nav" aria-label="Your account" inert={hidden}>
        <Stack gap={4}>
          <Text hiddenFrom="sm" size="sm" c="dimmed" px="sm" pb="xs" truncate>
            Signed in as {user?.name}
          </Text>
          {LINKS.map((link) => (
            <NavLink
              key={link.to}
              component={Link}
              to={link.to}
              label={link.label}
              active={pathname === link.to}
              aria-current={pathname === link.to ? "page" : undefined}
              onClick={close}
            />
          ))}
          {staff && <NavLink href="/admin" label="Admin portal" c="dimmed" />}
        </Stack>
      </AppShell.Navbar>

      <AppShell.Main bg="gray.0">
        <Container size="md" px={0} py="md">
          <Outlet />
        </Container>
      </AppShell.Main>
    </AppShell>
  );
}
