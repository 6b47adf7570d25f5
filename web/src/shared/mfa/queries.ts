// The signed-in person's second factors: one query (GET /users/me/mfa carries the
// passkeys too) and the writes, each of which reads it again. Turning MFA on ends the
// person's other sessions, so the sessions list is read again as well.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useSyncExternalStore } from "react";
import { api, type MfaStatus, type Passkey, type TotpEnrolment, unwrap } from "../api";
import { enrolmentGate } from "../gates";
import { meKeys } from "../me";
import { createPasskey, signChallenge } from "../webauthn";

export type SecondFactor = { method: "totp" | "recovery_code"; code: string } | { method: "webauthn" };

export function useMyMfa() {
  return useQuery({
    queryKey: meKeys.mfa(),
    queryFn: (): Promise<MfaStatus> => unwrap(api.GET("/api/v1/users/me/mfa")),
  });
}

/** Whether a request met 403 MFA_ENROLLMENT_REQUIRED (and MFA is not set up since). */
export function useEnrolmentRequired(): boolean {
  return useSyncExternalStore(
    (listener) => enrolmentGate.subscribe(listener),
    () => enrolmentGate.required,
  );
}

/** Call after any change to a factor. */
export function useMfaChanged() {
  const queryClient = useQueryClient();
  return async () => {
    await Promise.all([
      queryClient.invalidateQueries({ queryKey: meKeys.mfa() }),
      queryClient.invalidateQueries({ queryKey: meKeys.sessions() }),
    ]);
  };
}

export function startTotp(currentPassword: string): Promise<TotpEnrolment> {
  return unwrap(api.POST("/api/v1/users/me/mfa/totp", { body: { current_password: currentPassword } }));
}

export async function confirmTotp(code: string): Promise<string[]> {
  const answer = await unwrap(api.POST("/api/v1/users/me/mfa/totp/confirm", { body: { code } }));
  return answer.recovery_codes ?? [];
}

export function removeTotp(): Promise<unknown> {
  return unwrap(api.DELETE("/api/v1/users/me/mfa/totp"));
}

export async function regenerateRecoveryCodes(): Promise<string[]> {
  const answer = await unwrap(api.POST("/api/v1/users/me/mfa/recovery-codes"));
  return answer.recovery_codes ?? [];
}

/**
 * Register a passkey: a challenge (the password when MFA is still off; a step-up when it
 * is on, which the API client asks for by itself), the browser's ceremony, then the API's
 * check. The recovery codes are non-empty when this passkey turned MFA on.
 */
export async function addPasskey(
  name: string,
  currentPassword?: string,
): Promise<{ passkey: Passkey; recoveryCodes: string[] }> {
  const { challenge_id, options } = await unwrap(
    api.POST("/api/v1/users/me/passkeys/registration-options", {
      body: currentPassword ? { current_password: currentPassword } : {},
    }),
  );
  const credential = await createPasskey(options);
  const created = await unwrap(
    api.POST("/api/v1/users/me/passkeys", {
      body: { challenge_id, name, credential: credential as unknown as Record<string, unknown> },
    }),
  );
  return { passkey: created.passkey, recoveryCodes: created.recovery_codes ?? [] };
}

export function renamePasskey(id: string, name: string): Promise<Passkey> {
  return unwrap(
    api.PATCH("/api/v1/users/me/passkeys/{passkey_id}", { params: { path: { passkey_id: id } }, body: { name } }),
  );
}

export function removePasskey(id: string): Promise<unknown> {
  return unwrap(api.DELETE("/api/v1/users/me/passkeys/{passkey_id}", { params: { path: { passkey_id: id } } }));
}

/** Prove a second factor again for the routes that need a recent one. */
export async function stepUp(factor: SecondFactor): Promise<void> {
  if (factor.method !== "webauthn") {
    await unwrap(api.POST("/api/v1/auth/mfa/step-up", { body: factor }));
    return;
  }
  const { challenge_id, options } = await unwrap(api.POST("/api/v1/users/me/passkeys/authentication-options"));
  const credential = await signChallenge(options);
  await unwrap(
    api.POST("/api/v1/auth/mfa/step-up", {
      body: { method: "webauthn", challenge_id, credential: credential as unknown as Record<string, unknown> },
    }),
  );
}
