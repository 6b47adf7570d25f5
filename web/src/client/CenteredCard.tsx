import { Anchor, Container, Paper, Stack, Text, Title } from "@mantine/core";
import { useDocumentTitle } from "@mantine/hooks";
import type { ReactNode } from "react";
import { Link } from "react-router";

type Props = { title: string; children: ReactNode; footer?: ReactNode };

/** The frame of every signed-out page: the name of the service, one card in the middle. */
export function CenteredCard({ title, children, footer }: Props) {
  useDocumentTitle(`${title} · Gatehouse`);
  return (
    <Container size={440} py={48} px="md">
      <Stack gap="lg">
        <Anchor component={Link} to="/" underline="never" ta="center" c="indigo.7" fw={700} fz={28}>
          Gatehouse
        </Anchor>
        <Paper withBorder shadow="sm" radius="md" p="xl">
          <Stack gap="md">
            <Title order={1} size="h2">
              {title}
            </Title>
            {children}
          </Stack>
        </Paper>
        {footer && (
          <Text ta="center" size="sm" c="dimmed" component="div">
            {footer}
          </Text>
        )}
      </Stack>
    </Container>
  );
}
