import { Alert, Button, Stack, Text } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, unwrap } from "../../shared/api";
import { ErrorText } from "../../shared/ui";
import { CenteredCard } from "../CenteredCard";
import { useLinkToken } from "../linkToken";

/**
 * Takes an account's old address back, from the link mailed to it after a change. On a
 * button, never on arrival: mail scanners open links, and the token works once.
 */
export function UndoEmailChangePage() {
  const token = useLinkToken();
  const undo = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/auth/email-change/undo", { body: { token: token ?? "" } })),
  });

  return (
    <CenteredCard title="Undo an email change">
      {!token ? (
        <Alert color="red" role="alert">
          This link is incomplete. Open the link from the email again.
        </Alert>
      ) : undo.isIdle || undo.isPending ? (
        <Stack>
          <Text>
            If you did not change your account's email address, put this address back. Everyone logged in to the account
            is logged out.
          </Text>
          <Button onClick={() => undo.mutate()} loading={undo.isPending}>
            Put my address back
          </Button>
        </Stack>
      ) : undo.isError ? (
        <ErrorText error={undo.error} />
      ) : (
        <Stack>
          <Alert color="green" role="status" title="Your address is back">
            The account uses this address again and every session has ended. Choose a new password now: whoever changed
            the address may know the old one.
          </Alert>
          <Button component={Link} to="/forgot-password">
            Choose a new password
          </Button>
        </Stack>
      )}
    </CenteredCard>
  );
}
