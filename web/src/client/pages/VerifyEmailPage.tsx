import { Alert, Button } from "@mantine/core";
import { useMutation } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, unwrap } from "../../shared/api";
import { useAuth } from "../../shared/auth";
import { ErrorText } from "../../shared/ui";
import { CenteredCard } from "../CenteredCard";
import { useLinkToken } from "../linkToken";
import { ResendVerification } from "../ResendVerification";

/**
 * Confirms the address when the person presses the button, never on arrival: mail
 * scanners open (and some run) the links in an email, and a token is spent on first use.
 */
export function VerifyEmailPage() {
  const token = useLinkToken();
  const { status, user } = useAuth();
  const verify = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/auth/verify-email", { body: { token: token ?? "" } })),
  });

  const next =
    status === "signed-in" ? (
      <Button component={Link} to="/">
        Go to your profile
      </Button>
    ) : (
      <Button component={Link} to="/login">
        Log in
      </Button>
    );

  return (
    <CenteredCard title="Confirm your email">
      {!token ? (
        <>
          <Alert color="red" role="alert">
            This link is incomplete. Open the link from the email again.
          </Alert>
          <ResendVerification email={user?.email} />
        </>
      ) : verify.isIdle || verify.isPending ? (
        <Button onClick={() => verify.mutate()} loading={verify.isPending}>
          Confirm my email
        </Button>
      ) : verify.isError ? (
        <>
          <ErrorText error={verify.error} />
          <ResendVerification email={user?.email} />
        </>
      ) : (
        <Alert color="green" role="status" title="Email confirmed">
          Thank you: {verify.data.email} is confirmed.
        </Alert>
      )}
      {verify.isSuccess || verify.isError || !token ? next : null}
    </CenteredCard>
  );
}
