// Passkeys in the browser: the API hands out WebAuthn options as JSON, the library turns
// them into the browser's call and the answer back into JSON the API verifies.
import {
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  startAuthentication,
  startRegistration,
} from "@simplewebauthn/browser";

/** Whether this browser has WebAuthn at all (absent on old browsers and plain HTTP pages). */
export function passkeysSupported(): boolean {
  return typeof window !== "undefined" && typeof window.PublicKeyCredential === "function";
}

/** Ask the person's authenticator to sign the challenge; the JSON the API expects as `credential`. */
export function signChallenge(options: Record<string, unknown>) {
  return startAuthentication({ optionsJSON: options as unknown as PublicKeyCredentialRequestOptionsJSON });
}

/** Ask the person's authenticator to make a new passkey. */
export function createPasskey(options: Record<string, unknown>) {
  return startRegistration({ optionsJSON: options as unknown as PublicKeyCredentialCreationOptionsJSON });
}
