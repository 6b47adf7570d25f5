// The webhooks resource: its query keys and every hook that reads or writes it, so a
// screen never builds a key by hand and every write invalidates the same set.
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "../../shared/api";
import { ifMatch, unwrapVersioned, type Versioned } from "../../shared/versioned";

type Webhook = Schemas["WebhookRead"];

export const WEBHOOKS_PAGE_SIZE = 20;
export const DELIVERIES_PAGE_SIZE = 20;

export const webhooksKeys = {
  all: ["webhooks"] as const,
  lists: () => [...webhooksKeys.all, "list"] as const,
  list: (page: number) => [...webhooksKeys.lists(), page] as const,
  detail: (id: string) => [...webhooksKeys.all, "detail", id] as const,
  /** Every page of one webhook's deliveries. */
  deliveries: (id: string) => [...webhooksKeys.all, "deliveries", id] as const,
  deliveriesPage: (id: string, page: number) => [...webhooksKeys.deliveries(id), page] as const,
};

type After<T> = { onSuccess?: (data: T) => void; onError?: (error: Error) => void };

export function useWebhooks(page: number) {
  return useQuery({
    queryKey: webhooksKeys.list(page),
    queryFn: () => unwrap(api.GET("/api/v1/webhooks", { params: { query: { page, page_size: WEBHOOKS_PAGE_SIZE } } })),
    placeholderData: keepPreviousData,
  });
}

/** One webhook with its ETag, for writes that must not overwrite an unseen change. */
export function useWebhook(id: string) {
  return useQuery({
    queryKey: webhooksKeys.detail(id),
    queryFn: () => unwrapVersioned(api.GET("/api/v1/webhooks/{webhook_id}", { params: { path: { webhook_id: id } } })),
  });
}

export function useDeliveries(webhookId: string, page: number) {
  return useQuery({
    queryKey: webhooksKeys.deliveriesPage(webhookId, page),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/webhooks/{webhook_id}/deliveries", {
          params: { path: { webhook_id: webhookId }, query: { page, page_size: DELIVERIES_PAGE_SIZE } },
        }),
      ),
    placeholderData: keepPreviousData,
  });
}

export function useCreateWebhook(after: After<Schemas["WebhookWithSecret"]> = {}) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["WebhookCreate"]) => unwrap(api.POST("/api/v1/webhooks", { body })),
    onSuccess: (webhook) => {
      queryClient.invalidateQueries({ queryKey: webhooksKeys.lists() });
      after.onSuccess?.(webhook);
    },
    onError: after.onError,
  });
}

/**
 * After a write to a webhook: the page shows the answer at once (or reads it again),
 * and the list and its deliveries are read again.
 */
function useWebhookChanged() {
  const queryClient = useQueryClient();
  return (id: string, written?: Versioned<Webhook>) => {
    if (written) queryClient.setQueryData(webhooksKeys.detail(id), written);
    else queryClient.invalidateQueries({ queryKey: webhooksKeys.detail(id) });
    queryClient.invalidateQueries({ queryKey: webhooksKeys.lists() });
    queryClient.invalidateQueries({ queryKey: webhooksKeys.deliveries(id) });
  };
}

export function useSetWebhookEnabled(current: Versioned<Webhook>, after: After<Versioned<Webhook>> = {}) {
  const changed = useWebhookChanged();
  const id = current.data.id;
  return useMutation({
    mutationFn: (enabled: boolean) =>
      unwrapVersioned(
        api.PATCH("/api/v1/webhooks/{webhook_id}", {
          params: { path: { webhook_id: id }, header: ifMatch(current.etag) },
          body: { enabled },
        }),
      ),
    onSuccess: (result) => {
      changed(id, result);
      after.onSuccess?.(result);
    },
    onError: after.onError,
  });
}

export function useRotateWebhookSecret(current: Versioned<Webhook>, after: After<Schemas["WebhookWithSecret"]> = {}) {
  const changed = useWebhookChanged();
  const id = current.data.id;
  return useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/v1/webhooks/{webhook_id}/rotate-secret", {
          params: { path: { webhook_id: id }, header: ifMatch(current.etag) },
        }),
      ),
    onSuccess: (result) => {
      changed(id);
      after.onSuccess?.(result);
    },
    onError: after.onError,
  });
}

export function useTestWebhook(id: string, after: After<unknown> = {}) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/webhooks/{webhook_id}/test", { params: { path: { webhook_id: id } } })),
    onSuccess: (result) => {
      queryClient.invalidateQueries({ queryKey: webhooksKeys.deliveries(id) });
      after.onSuccess?.(result);
    },
    onError: after.onError,
  });
}

export function useDeleteWebhook(current: Versioned<Webhook>, after: After<void> = {}) {
  const queryClient = useQueryClient();
  const id = current.data.id;
  return useMutation({
    mutationFn: () =>
      unwrap(
        api.DELETE("/api/v1/webhooks/{webhook_id}", {
          params: { path: { webhook_id: id }, header: ifMatch(current.etag) },
        }),
      ),
    onSuccess: () => {
      // A deleted webhook no longer answers: reading it again would only meet a 404.
      queryClient.removeQueries({ queryKey: webhooksKeys.detail(id) });
      queryClient.removeQueries({ queryKey: webhooksKeys.deliveries(id) });
      queryClient.invalidateQueries({ queryKey: webhooksKeys.lists() });
      after.onSuccess?.();
    },
    onError: after.onError,
  });
}
