import { Alert, Button, Container, Group, Paper, Stack, Title } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useAuth } from "../shared/auth";
import { enrolmentGate } from "../shared/gates";
import { MfaEnrolment } from "../shared/mfa/MfaEnrolment";
import { usePageTitle } from "./usePageTitle";

/**
 * Shown instead of any page once the API answered 403 MFA_ENROLLMENT_REQUIRED: the
 * portal goes on where it was when a second factor is set up.
 */
export function ForcedEnrolmentPage() {
  usePageTitle("Set up two-factor authentication");
  const queryClient = useQueryClient();
  const { user, logout } = useAuth();
  const [leaving, setLeaving] = useState(false);

  const enrolled = () => {
    enrolmentGate.set(false);
    // What failed behind this screen is asked again.
    void queryClient.invalidateQueries();
  };

  return (
    <Container size={560} py={{ base: "lg", sm: 60 }}>
      <Paper withBorder shadow="sm" p="lg" radius="md">
        <Stack>
          <Title order={1} fz="h2">
            Set up two-factor authentication
          </Title>
          <Alert color="orange" variant="light" title="Your role requires two-factor authentication">
            {user ? `${user.name}, before` : "Before"} you can use the admin portal, add a second factor to your
            account. Logging in will then need it as well as your password.
          </Alert>
          <MfaEnrolment onEnrolled={enrolled} />
          <Group justify="flex-end">
            <Button
              variant="subtle"
              loading={leaving}
              onClick={async () => {
                setLeaving(true);
                await logout().finally(() => setLeaving(false));
              }}
            >
              Log out
            </Button>
          </Group>
        </Stack>
      </Paper>
    </Container>
  );
}
