import { Anchor, Button, Text } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { Link, useLocation } from "react-router";
import { session } from "../../shared/api";
import { CSRF_COOKIE } from "../../shared/session";
import { CenteredCard } from "../CenteredCard";

export function AccountDeletedPage() {
  const deleted = (useLocation().state as { deleted?: boolean } | null)?.deleted === true;
  const queryClient = useQueryClient();

  useEffect(() => {
    if (!deleted) return;
    // The API has ended every session already; forget this one without asking it again.
    session.clear();
    queryClient.clear();
    // The refresh cookie is dead; dropping the readable CSRF cookie spares the next
    // page load a refresh that can only fail.
    // biome-ignore lint/suspicious/noDocumentCookie: the Cookie Store API is missing from browsers the app supports (older Firefox and Safari)
    document.cookie = `${CSRF_COOKIE}=; Max-Age=0; Path=/; SameSite=Strict`;
  }, [deleted, queryClient]);

  return (
    <CenteredCard
      title="Your account has been deleted"
      footer={
        <Anchor component={Link} to="/signup" size="sm">
          Create a new account
        </Anchor>
      }
    >
      <Text>
        You have been logged out everywhere. If this was a mistake, ask an administrator soon: they can restore the
        account for a short time before it is erased for good.
      </Text>
      <Button component={Link} to="/login" variant="default">
        Back to the login
      </Button>
    </CenteredCard>
  );
}
