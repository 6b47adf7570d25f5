// The clients resource (docs/api.md, "Clients"): its query keys and every hook that
// reads or writes it. Every write sends the version it read (If-Match), so an admin
// never overwrites a change they have not seen.
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "../../shared/api";
import { ifMatch, unwrapVersioned, type Versioned } from "../../shared/versioned";

export type OAuthClient = Schemas["ClientRead"];
export type ClientWithSecret = Schemas["ClientWithSecret"];
export type ClientSecret = Schemas["ClientSecret"];

export const CLIENTS_PAGE_SIZE = 20;

export const clientsKeys = {
  all: ["clients"] as const,
  lists: () => [...clientsKeys.all, "list"] as const,
  list: (page: number) => [...clientsKeys.lists(), page] as const,
  detail: (id: string) => [...clientsKeys.all, "detail", id] as const,
};

type After<T> = { onSuccess?: (data: T) => void; onError?: (error: Error) => void };

export function useClients(page: number) {
  return useQuery({
    queryKey: clientsKeys.list(page),
    queryFn: () => unwrap(api.GET("/api/v1/clients", { params: { query: { page, page_size: CLIENTS_PAGE_SIZE } } })),
    placeholderData: keepPreviousData,
  });
}

/** One client with its ETag. */
export function useClient(id: string) {
  return useQuery({
    queryKey: clientsKeys.detail(id),
    queryFn: () => unwrapVersioned(api.GET("/api/v1/clients/{id}", { params: { path: { id } } })),
  });
}

export function useCreateClient(after: After<Versioned<ClientWithSecret>> = {}) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["ClientCreate"]) => unwrapVersioned(api.POST("/api/v1/clients", { body })),
    onSuccess: (created) => {
      // The page of the new client shows at once, without its secret (never stored here).
      const { client_secret: _secret, ...client } = created.data;
      queryClient.setQueryData(clientsKeys.detail(client.id), { data: client, etag: created.etag });
      queryClient.invalidateQueries({ queryKey: clientsKeys.lists() });
      after.onSuccess?.(created);
    },
    onError: after.onError,
  });
}

/** After a write: the page shows the answer (or reads it again), the lists are read again. */
function useClientChanged() {
  const queryClient = useQueryClient();
  return (id: string, written?: Versioned<OAuthClient>) => {
    if (written) queryClient.setQueryData(clientsKeys.detail(id), written);
    else queryClient.invalidateQueries({ queryKey: clientsKeys.detail(id) });
    queryClient.invalidateQueries({ queryKey: clientsKeys.lists() });
  };
}

/** Read the client again (after a version conflict: the page shows the latest). */
export function useReloadClient(id: string) {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: clientsKeys.detail(id) });
}

export function useUpdateClient(current: Versioned<OAuthClient>, after: After<Versioned<OAuthClient>> = {}) {
  const changed = useClientChanged();
  const id = current.data.id;
  return useMutation({
    mutationFn: (body: Schemas["ClientPatch"]) =>
      unwrapVersioned(
        api.PATCH("/api/v1/clients/{id}", { params: { path: { id }, header: ifMatch(current.etag) }, body }),
      ),
    onSuccess: (result) => {
      changed(id, result);
      after.onSuccess?.(result);
    },
    onError: after.onError,
  });
}

export function useSetClientEnabled(current: Versioned<OAuthClient>, after: After<Versioned<OAuthClient>> = {}) {
  const changed = useClientChanged();
  const id = current.data.id;
  return useMutation({
    mutationFn: (enabled: boolean) => {
      const params = { params: { path: { id }, header: ifMatch(current.etag) } };
      return unwrapVersioned(
        enabled ? api.POST("/api/v1/clients/{id}/enable", params) : api.POST("/api/v1/clients/{id}/disable", params),
      );
    },
    onSuccess: (result) => {
      changed(id, result);
      after.onSuccess?.(result);
    },
    onError: after.onError,
  });
}

export function useRotateClientSecret(current: Versioned<OAuthClient>, after: After<ClientSecret> = {}) {
  const changed = useClientChanged();
  const id = current.data.id;
  return useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/v1/clients/{id}/rotate-secret", { params: { path: { id }, header: ifMatch(current.etag) } }),
      ),
    onSuccess: (result) => {
      // The answer is the secret, not the client: its new version is read again.
      changed(id);
      after.onSuccess?.(result);
    },
    onError: after.onError,
  });
}

export function useDeleteClient(current: Versioned<OAuthClient>, after: After<void> = {}) {
  const queryClient = useQueryClient();
  const id = current.data.id;
  return useMutation({
    mutationFn: () =>
      unwrap(api.DELETE("/api/v1/clients/{id}", { params: { path: { id }, header: ifMatch(current.etag) } })),
    onSuccess: () => {
      // A deleted client no longer answers: reading it again would only meet a 404.
      queryClient.removeQueries({ queryKey: clientsKeys.detail(id) });
      queryClient.invalidateQueries({ queryKey: clientsKeys.lists() });
      after.onSuccess?.();
    },
    onError: after.onError,
  });
}
