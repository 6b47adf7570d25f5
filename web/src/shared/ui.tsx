// Pieces both apps use: the providers, an error line, a confirmation, a full-page loader.
import { Alert, Center, createTheme, Loader, MantineProvider, Modal, Notification } from "@mantine/core";
import "@mantine/core/styles.css";
import { ModalsProvider, modals } from "@mantine/modals";
import { Notifications } from "@mantine/notifications";
import "@mantine/notifications/styles.css";
import { MutationCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { type ReactNode, useState } from "react";
import { AuthProvider } from "./auth";
import { ApiError, describeError } from "./errors";

export const theme = createTheme({
  primaryColor: "indigo",
  defaultRadius: "md",
  fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
  // Their close buttons are an icon alone: give every one a name screen readers say.
  components: {
    Modal: Modal.extend({ defaultProps: { closeButtonProps: { "aria-label": "Close" } } }),
    Notification: Notification.extend({ defaultProps: { closeButtonProps: { "aria-label": "Close the message" } } }),
  },
});

function retry(failures: number, error: unknown): boolean {
  // A 4xx will not change by asking again; a network blip or a 5xx may.
  if (error instanceof ApiError && error.status < 500) return false;
  return failures < 2;
}

export function AppProviders({ children }: { children: ReactNode }) {
  const [client] = useState(
    () =>
      new QueryClient({
        defaultOptions: { queries: { retry, refetchOnWindowFocus: false }, mutations: { retry: false } },
        mutationCache: new MutationCache(),
      }),
  );
  return (
    <MantineProvider theme={theme} defaultColorScheme="light">
      <QueryClientProvider client={client}>
        <ModalsProvider>
          <Notifications position="top-center" />
          <AuthProvider>{children}</AuthProvider>
        </ModalsProvider>
      </QueryClientProvider>
    </MantineProvider>
  );
}

/** The error of a failed request in words, or nothing. */
export function ErrorText({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  return (
    <Alert color="red" title={title} role="alert" variant="light">
      {describeError(error)}
    </Alert>
  );
}

export function PageLoader() {
  return (
    <Center h="60vh">
      <Loader aria-label="Loading" />
    </Center>
  );
}

type Confirm = {
  title: string;
  message: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void;
};

/** Ask before something that cannot be taken back. */
export function confirmAction({ title, message, confirmLabel, danger = true, onConfirm }: Confirm): void {
  modals.openConfirmModal({
    title,
    children: message,
    labels: { confirm: confirmLabel, cancel: "Cancel" },
    confirmProps: { color: danger ? "red" : undefined },
    onConfirm,
  });
}
