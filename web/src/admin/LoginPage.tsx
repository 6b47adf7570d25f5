import { Anchor, Button, Container, Paper, Stack, Text, Title } from "@mantine/core";
import { useState } from "react";
import { useAuth } from "../shared/auth";
import { LoginForm } from "../shared/LoginForm";
import { usePageTitle } from "./usePageTitle";

export function LoginPage() {
  usePageTitle("Log in");
  return (
    <Container size={440} py={{ base: "lg", sm: 80 }}>
      <Title order={1} ta="center">
        Gatehouse admin
      </Title>
      <Text c="dimmed" ta="center" mt={4}>
        For admins and readonly admins
      </Text>
      <Paper withBorder shadow="sm" p="lg" mt="lg" radius="md">
        <LoginForm />
      </Paper>
      <Text ta="center" fz="sm" mt="md">
        Looking for your own account? <Anchor href="/">Open the Gatehouse app</Anchor>
      </Text>
    </Container>
  );
}

/** A plain `user` logged in: say so, point to the client app, let them log out. */
export function NotAllowedPage() {
  usePageTitle("Not available");
  const { user, logout } = useAuth();
  const [leaving, setLeaving] = useState(false);
  return (
    <Container size={480} py={{ base: "lg", sm: 80 }}>
      <Paper withBorder shadow="sm" p="lg" radius="md">
        <Stack>
          <Title order={1} fz="h2">
            This account cannot use the admin portal
          </Title>
          <Text>
            {user ? `${user.name} (${user.email}) is` : "This is"} a user account. The admin portal is for admins and
            readonly admins; your own profile, password and sessions are in the Gatehouse app.
          </Text>
          <Anchor href="/">Go to the Gatehouse app</Anchor>
          <Button
            variant="default"
            loading={leaving}
            onClick={async () => {
              setLeaving(true);
              await logout().finally(() => setLeaving(false));
            }}
            style={{ alignSelf: "flex-start" }}
          >
            Log out
          </Button>
        </Stack>
      </Paper>
    </Container>
  );
}
