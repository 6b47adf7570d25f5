import { Alert, Anchor, Button, Group, Loader, Stack, Text } from "@mantine/core";
import { type ReactNode, useCallback, useEffect, useRef, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { useAuth } from "../../shared/auth";
import { LoginForm } from "../../shared/LoginForm";
import { ErrorText, PageLoader } from "../../shared/ui";
import { CenteredCard } from "../CenteredCard";
import { PublicOnly, useReturnPath } from "../guards";
import { startBrowserSession } from "../oauth/api";
import { browser, readSignInRequest, type SignInRequest } from "../oauth/returnTo";

/**
 * /login: the plain login (a signed-in visitor skips it), or, sent by /oauth2/authorize
 * with a return_to, the login that leads back to the application.
 */
export function LoginPage() {
  const [params] = useSearchParams();
  const request = readSignInRequest(params);
  if (request) return <LoginForApplication request={request} />;
  return (
    <PublicOnly>
      <PlainLogin />
    </PublicOnly>
  );
}

function LoginFrame({ children }: { children: ReactNode }) {
  return (
    <CenteredCard
      title="Log in"
      footer={
        <>
          New here?{" "}
          <Anchor component={Link} to="/signup" size="sm">
            Create an account
          </Anchor>
        </>
      }
    >
      {children}
    </CenteredCard>
  );
}

function ForgotLink() {
  return (
    <Group justify="center">
      <Anchor component={Link} to="/forgot-password" size="sm">
        Forgot your password?
      </Anchor>
    </Group>
  );
}

function PlainLogin() {
  const navigate = useNavigate();
  const target = useReturnPath();
  return (
    <LoginFrame>
      <LoginForm onLoggedIn={() => navigate(target, { replace: true })} />
      <ForgotLink />
    </LoginFrame>
  );
}

/**
 * Any way in (password, its second step, a passkey), or the login already there: the
 * browser session for the OpenID provider is started, then back to /oauth2/authorize.
 */
function LoginForApplication({ request }: { request: SignInRequest }) {
  const { status, user } = useAuth();
  const [leaving, setLeaving] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const busy = useRef(false);
  // Whether someone was logged in when the page opened; decided once.
  const [arrivedSignedIn, setArrivedSignedIn] = useState<boolean | null>(null);

  const proceed = useCallback(async () => {
    if (busy.current) return;
    busy.current = true;
    setError(null);
    setLeaving(true);
    try {
      await startBrowserSession();
      browser.assign(request.returnTo);
    } catch (caught) {
      busy.current = false;
      setLeaving(false);
      setError(caught);
    }
  }, [request.returnTo]);

  useEffect(() => {
    if (status === "loading" || arrivedSignedIn !== null) return;
    const signedIn = status === "signed-in";
    setArrivedSignedIn(signedIn);
    // Logged in already, and the application did not ask for a new login: straight on.
    if (signedIn && !request.fresh) void proceed();
  }, [status, arrivedSignedIn, request.fresh, proceed]);

  if (status === "loading" || arrivedSignedIn === null) return <PageLoader />;

  if (leaving) {
    return (
      <LoginFrame>
        <Stack align="center" gap="sm" py="md" role="status">
          <Loader aria-label="Continuing" />
          <Text>Taking you back to the application…</Text>
        </Stack>
      </LoginFrame>
    );
  }

  // The session could not be handed on while logged in: say why, and offer it again.
  if (status === "signed-in" && !request.fresh && error) {
    return (
      <LoginFrame>
        <ErrorText error={error} title="You could not be sent back to the application" />
        <Button onClick={() => void proceed()}>Try again</Button>
      </LoginFrame>
    );
  }

  return (
    <LoginFrame>
      <Text size="sm" c="dimmed">
        An application asks you to log in with your Gatehouse account.
      </Text>
      {status === "signed-in" && request.fresh && user && (
        <Alert color="blue" variant="light" role="status">
          You are logged in as {user.email}. The application asks you to log in again.
        </Alert>
      )}
      <ErrorText error={error} title="You could not be sent back to the application" />
      <LoginForm initialEmail={request.loginHint} onLoggedIn={() => void proceed()} />
      <ForgotLink />
    </LoginFrame>
  );
}
