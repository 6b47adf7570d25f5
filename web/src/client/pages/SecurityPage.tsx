import { Alert, Stack } from "@mantine/core";
import { useEffect } from "react";
import { enrolmentGate } from "../../shared/gates";
import { useEnrolmentRequired, useMyMfa } from "../../shared/mfa/queries";
import { SecuritySettings } from "../../shared/mfa/SecuritySettings";
import { ErrorText, PageLoader } from "../../shared/ui";
import { ConnectedApps } from "../oauth/ConnectedApps";
import { PageHeader } from "../PageHeader";

export function SecurityPage() {
  const mfa = useMyMfa();
  const refused = useEnrolmentRequired();
  const enabled = mfa.data?.enabled ?? false;
  const required = refused || (mfa.data?.required ?? false);

  useEffect(() => {
    // Set up: the other pages answer again.
    if (enabled) enrolmentGate.set(false);
  }, [enabled]);

  return (
    <>
      <PageHeader
        title="Security"
        description="Two-factor authentication (an authenticator app, passkeys and recovery codes) and the applications connected to your account."
      />
      {required && !enabled && mfa.data && (
        <Alert color="orange" variant="light" title="Your role requires two-factor authentication" mb="lg" role="alert">
          Set up an authenticator app or add a passkey. Until then, the rest of your account stays closed.
        </Alert>
      )}
      <Stack gap="lg">
        {mfa.data ? (
          <SecuritySettings status={mfa.data} />
        ) : mfa.isError ? (
          <ErrorText error={mfa.error} />
        ) : (
          <PageLoader />
        )}
        {/* Closed like every other page until the role's second factor is set up. */}
        {!refused && <ConnectedApps />}
      </Stack>
    </>
  );
}
