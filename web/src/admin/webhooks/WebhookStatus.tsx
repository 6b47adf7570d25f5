import { Stack, Text } from "@mantine/core";
import type { Schemas } from "../../shared/api";
import { FitBadge } from "../FitBadge";

export function WebhookStatus({ webhook }: { webhook: Schemas["WebhookRead"] }) {
  if (webhook.enabled) {
    return <FitBadge color="teal">enabled</FitBadge>;
  }
  return (
    <Stack gap={2} align="flex-start">
      <FitBadge color="red">disabled</FitBadge>
      {webhook.disabled_reason && (
        <Text fz="xs" c="dimmed">
          {webhook.disabled_reason}
        </Text>
      )}
    </Stack>
  );
}

const DELIVERY_COLORS: Record<Schemas["DeliveryStatus"], string> = {
  pending: "yellow",
  succeeded: "teal",
  failed: "red",
};

export function DeliveryStatus({ status }: { status: Schemas["DeliveryStatus"] }) {
  return <FitBadge color={DELIVERY_COLORS[status]}>{status}</FitBadge>;
}
