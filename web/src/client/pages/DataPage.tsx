import { Button, Paper, Stack, Text, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useMutation } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { api, downloadJson, unwrap } from "../../shared/api";
import { useAuth } from "../../shared/auth";
import { ErrorText } from "../../shared/ui";
import { DeleteAccountModal } from "../DeleteAccountModal";
import { PageHeader } from "../PageHeader";
import { exportFilename } from "../validation";

export function DataPage() {
  const { user } = useAuth();
  const navigate = useNavigate();
  const [deleting, { open, close }] = useDisclosure(false);

  const download = useMutation({
    mutationFn: () => unwrap(api.GET("/api/v1/users/me/export")),
    onSuccess: (data) => downloadJson(data, exportFilename()),
  });

  function deleted() {
    // The page there forgets the session: forgetting it here would let the private
    // route send the person to the login before they read that the account is gone.
    navigate("/account-deleted", { replace: true, state: { deleted: true } });
  }

  return (
    <>
      <PageHeader title="Your data" description="Everything Gatehouse keeps about you, and how to leave." />
      <Stack gap="lg">
        <Paper withBorder radius="md" p="lg" component="section" aria-labelledby="export-title">
          <Stack align="flex-start">
            <Title order={2} size="h4" id="export-title">
              Download your data
            </Title>
            <Text>
              One JSON file with your profile, your sessions, the emails sent to you and the audit records about your
              account.
            </Text>
            <ErrorText error={download.error} />
            <Button onClick={() => download.mutate()} loading={download.isPending}>
              Download my data
            </Button>
          </Stack>
        </Paper>

        <Paper
          withBorder
          radius="md"
          p="lg"
          component="section"
          aria-labelledby="danger-title"
          style={{ borderColor: "var(--mantine-color-red-4)" }}
        >
          <Stack align="flex-start">
            <Title order={2} size="h4" c="red.8" id="danger-title">
              Danger zone
            </Title>
            <Text>
              Deleting your account logs you out everywhere and stops you logging in. An administrator can restore it
              for a short time; after that your personal data is erased for good.
            </Text>
            <Button color="red" variant="outline" onClick={open}>
              Delete my account
            </Button>
          </Stack>
        </Paper>
      </Stack>
      {user && <DeleteAccountModal email={user.email} opened={deleting} onClose={close} onDeleted={deleted} />}
    </>
  );
}
