import { Anchor, Stack, Text, Title } from "@mantine/core";
import { Link } from "react-router";
import { usePageTitle } from "./usePageTitle";

export function NotFoundPage() {
  usePageTitle("Page not found");
  return (
    <Stack>
      <Title order={2}>Page not found</Title>
      <Text>There is no page at this address in the admin portal.</Text>
      <Anchor component={Link} to="/users">
        Go to the users
      </Anchor>
    </Stack>
  );
}
