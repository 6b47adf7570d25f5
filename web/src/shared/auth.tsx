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
import { type MfaVerifyRequest, session, type User } from "./api";
import { describeError } from "./errors";
import { enrolmentGate } from "./gates";
import { fetchMe, storeSignedIn, useMe } from "./me";
import { StepUpProvider } from "./mfa/StepUp";
import type { Credentials } from "./session";

export type MfaVerify = MfaVerifyRequest;

type AuthState = {
  /** `loading` until the first refresh attempt has answered. */
  status: "loading" | "signed-out" | "signed-in";
  user: User | null;
  login: (credentials: Credentials) => Promise<User>;
  /** Finish a login that answered 401 MFA_REQUIRED, with the second factor. */
  verifyMfa: (body: MfaVerify) => Promise<User>;
  /** Log in with a passkey alone (the assertion the browser made for a passwordless challenge). */
  passkeyLogin: (body: { challenge_id: string; credential: unknown }) => Promise<User>;
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
    if (!signedIn) {
      queryClient.removeQueries();
      enrolmentGate.set(false);
    }
  }, [signedIn, queryClient]);

  const me = useMe(signedIn);

  const signedInBy = useCallback(
    async (step: () => Promise<void>) => {
      await step();
      const user = await fetchMe();
      storeSignedIn(queryClient, user);
      return user;
    },
    [queryClient],
  );
  const login = useCallback((credentials: Credentials) => signedInBy(() => session.login(credentials)), [signedInBy]);
  const verifyMfa = useCallback((body: MfaVerify) => signedInBy(() => session.verifyMfa(body)), [signedInBy]);
  const passkeyLogin = useCallback(
    (body: { challenge_id: string; credential: unknown }) => signedInBy(() => session.passkeyLogin(body)),
    [signedInBy],
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
    return { status, user: signedIn ? (me.data ?? null) : null, login, verifyMfa, passkeyLogin, logout };
  }, [started, signedIn, me.data, me.isError, login, verifyMfa, passkeyLogin, logout]);

  if (startError) return <StartProblem error={startError} onRetry={start} />;
  return (
    <AuthContext.Provider value={value}>
      <StepUpProvider>{children}</StepUpProvider>
    </AuthContext.Provider>
  );
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
