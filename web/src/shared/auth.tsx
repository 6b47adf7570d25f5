// Who is logged in, for both apps: on load the refresh cookie is tried once, so a
// reload keeps the person logged in without any token in storage.
import { Alert, Button, Center, Stack } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useState,
  useSyncExternalStore,
} from "react";
import { session, type User } from "./api";
import { describeError } from "./errors";
import { fetchMe, storeSignedIn, useMe } from "./me";
import type { Credentials } from "./session";

type AuthState = {
  /** `loading` until the first refresh attempt has answered. */
  status: "loading" | "signed-out" | "signed-in";
  user: User | null;
  login: (credentials: Credentials) => Promise<User>;
  logout: (all?: boolean) => Promise<void>;
};

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [started, setStarted] = useState(false);
  // The first refresh failed for another reason than "no session" (offline, 429, 5xx):
  // say so and offer a retry, rather than show a login the person may not need.
  const [startError, setStartError] = useState<unknown>(null);
  const signedIn = useSyncExternalStore(
    (listener) => session.subscribe(listener),
    () => session.signedIn,
  );

  const start = useCallback(() => {
    setStartError(null);
    session.refresh().then(
      () => setStarted(true),
      (error: unknown) => setStartError(error),
    );
  }, []);

  useEffect(start, [start]);

  useEffect(() => {
    // Logged out (here, or the API refused the session): nothing cached may outlive it.
    if (!signedIn) queryClient.removeQueries();
  }, [signedIn, queryClient]);

  const me = useMe(signedIn);

  const login = useCallback(
    async (credentials: Credentials) => {
      await session.login(credentials);
      const user = await fetchMe();
      storeSignedIn(queryClient, user);
      return user;
    },
    [queryClient],
  );

  const logout = useCallback(
    async (all = false) => {
      await session.logout(all);
      queryClient.clear();
    },
    [queryClient],
  );

  const value = useMemo<AuthState>(() => {
    let status: AuthState["status"];
    if (!started) status = "loading";
    else if (!signedIn) status = "signed-out";
    else status = me.data ? "signed-in" : me.isError ? "signed-out" : "loading";
    return { status, user: signedIn ? (me.data ?? null) : null, login, logout };
  }, [started, signedIn, me.data, me.isError, login, logout]);

  if (startError) return <StartProblem error={startError} onRetry={start} />;
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

function StartProblem({ error, onRetry }: { error: unknown; onRetry: () => void }) {
  return (
    <Center mih="60vh" p="md">
      <Stack maw={420}>
        <Alert color="red" role="alert" title="Gatehouse is not answering">
          {describeError(error)}
        </Alert>
        <Button onClick={onRetry}>Try again</Button>
      </Stack>
    </Center>
  );
}

export function useAuth(): AuthState {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}
