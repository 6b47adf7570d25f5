import { Stack, Text, Title } from "@mantine/core";
import { useDocumentTitle } from "@mantine/hooks";
import type { ReactNode } from "react";

/** The heading of a signed-in page, which also names the browser tab. */
export function PageHeader({ title, description }: { title: string; description?: ReactNode }) {
  useDocumentTitle(`${title} · Gatehouse`);
  return (
    <Stack gap={4} mb="lg">
      <Title order={1} size="h2">
        {title}
      </Title>
      {description && <Text c="dimmed">{description}</Text>}
    </Stack>
  );
}
