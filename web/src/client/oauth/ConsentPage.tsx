import { Alert, Anchor, Badge, Button, Group, List, Stack, Text, ThemeIcon } from "@mantine/core";
import { useState } from "react";
import { Link, Navigate, useLocation } from "react-router";
import { useAuth } from "../../shared/auth";
import { ApiError } from "../../shared/errors";
import { ErrorText, PageLoader } from "../../shared/ui";
import { CenteredCard } from "../CenteredCard";
import { AppLogo } from "./AppLogo";
import { type ConsentRequest, useAnswerConsent, useConsentRequest } from "./api";
import { browser, loginFor } from "./returnTo";
import { describeScope, orderScopes } from "./scopes";

/**
 * /consent?<the authorize request>: /oauth2/authorize sends a person here when an
 * application asks for more than they have allowed it. Allow or Deny, then the API
 * says where the browser goes (back to the authorize endpoint, or to the application).
 */
export function ConsentPage() {
  const { status } = useAuth();
  const query = useLocation().search.replace(/^\?/, "");
  const request = useConsentRequest(query, status === "signed-in" && query !== "");
  // The token was refused under the request: the session is over, as if signed out.
  const ended = request.error instanceof ApiError && request.error.status === 401;

  if (status === "loading") return <PageLoader />;
  if (status === "signed-out" || ended) {
    // return_to may only lead to the authorize endpoint: it sends them back here if needed.
    return <Navigate to={query ? loginFor(query) : "/login"} replace />;
  }
  if (!query) return <BadRequest error={null} />;
  if (request.isPending) return <PageLoader />;
  if (request.isError) return <BadRequest error={request.error} />;
  return <ConsentForm query={query} request={request.data} />;
}

function BadRequest({ error }: { error: unknown }) {
  const oauth = error instanceof ApiError && error.code === "OAUTH_REQUEST_INVALID";
  const reason = oauth && typeof error.details.error === "string" ? error.details.error : null;
  return (
    <CenteredCard title="This request cannot go on">
      {oauth || !error ? (
        <Alert color="red" variant="light" role="alert" title="The application's sign-in request is not valid">
          <Stack gap={4}>
            {oauth && error.message && <Text size="sm">{error.message}</Text>}
            <Text size="sm">Go back to the application and try again; if it keeps happening, tell its owners.</Text>
            {reason && (
              <Text size="xs" c="dimmed">
                Error code: {reason}
              </Text>
            )}
          </Stack>
        </Alert>
      ) : (
        <ErrorText error={error} title="The request could not be read" />
      )}
      <Anchor component={Link} to="/" size="sm">
        Go to your account
      </Anchor>
    </CenteredCard>
  );
}

function ConsentForm({ query, request }: { query: string; request: ConsentRequest }) {
  const { user } = useAuth();
  const [choice, setChoice] = useState<"allow" | "deny" | null>(null);
  const answer = useAnswerConsent({
    onSuccess: ({ redirect_to }) => browser.assign(redirect_to),
    onError: () => setChoice(null),
  });
  const { client } = request;
  const fresh = new Set(request.new_scopes);
  const host = hostOf(request.redirect_uri);
  // Once answered, the browser is on its way: the buttons stay off until the page changes.
  const leaving = answer.isSuccess;

  const send = (allow: boolean) => {
    setChoice(allow ? "allow" : "deny");
    answer.mutate({ query, allow });
  };

  return (
    <CenteredCard title={`Allow ${client.name}?`}>
      <Group gap="sm" wrap="nowrap">
        <AppLogo name={client.name} logoUrl={client.logo_url} size="lg" />
        <Stack gap={0} style={{ minWidth: 0 }}>
          <Text fw={600} style={{ overflowWrap: "anywhere" }}>
            {client.name}
          </Text>
          {host && (
            <Text size="sm" c="dimmed" style={{ overflowWrap: "anywhere" }}>
              at {host}
            </Text>
          )}
        </Stack>
      </Group>
      <Text>
        {client.name} asks to use your Gatehouse account{user ? ` (${user.email})` : ""}. It will be able to:
      </Text>
      <List spacing="xs" aria-label="What the application asks for" listStyleType="none" p={0}>
        {orderScopes(request.scopes).map((scope) => (
          <List.Item
            key={scope}
            icon={
              <ThemeIcon size={20} radius="xl" color={fresh.has(scope) ? "indigo" : "gray"} variant="light">
                ✓
              </ThemeIcon>
            }
          >
            <Group gap="xs">
              <Text span fw={fresh.has(scope) ? 600 : undefined}>
                {describeScope(scope)}
              </Text>
              {fresh.has(scope) ? (
                <Badge size="sm" variant="light" color="indigo">
                  New
                </Badge>
              ) : (
                <Badge size="sm" variant="light" color="gray">
                  Allowed before
                </Badge>
              )}
            </Group>
          </List.Item>
        ))}
      </List>
      <ErrorText error={answer.error} title="Your answer was not recorded" />
      <Group grow>
        <Button
          variant="default"
          onClick={() => send(false)}
          loading={choice === "deny" && (answer.isPending || leaving)}
          disabled={choice === "allow" || leaving}
        >
          Deny
        </Button>
        <Button
          onClick={() => send(true)}
          loading={choice === "allow" && (answer.isPending || leaving)}
          disabled={choice === "deny" || leaving}
        >
          Allow
        </Button>
      </Group>
      <Text size="xs" c="dimmed">
        You can take this access back at any time under Security → Connected apps.{" "}
        <Anchor component={Link} to={loginFor(query, { fresh: "1" })} size="xs">
          Not you? Log in as someone else
        </Anchor>
      </Text>
    </CenteredCard>
  );
}

function hostOf(uri: string): string | null {
  try {
    return new URL(uri).host || null;
  } catch {
    return null;
  }
}
