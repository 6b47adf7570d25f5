// A single user (or webhook) carries an ETag, its version; writes send it back as
// If-Match, so nobody overwrites a change they have not seen (409 VERSION_CONFLICT).
import { unwrap } from "./api";

export type Versioned<T> = { data: T; etag: string | null };

type Result<T> = { data?: T; error?: unknown; response: Response };

/** Like `unwrap`, keeping the answer's ETag. */
export async function unwrapVersioned<T>(pending: Promise<Result<T>>): Promise<Versioned<T>> {
  const result = await pending;
  const data = await unwrap(Promise.resolve(result));
  return { data, etag: result.response.headers.get("ETag") };
}

/** The If-Match header for a version we read, or none (an unconditional write). */
export function ifMatch(etag: string | null | undefined): { "If-Match"?: string } {
  return etag ? { "If-Match": etag } : {};
}
