import { Button, Text } from "@mantine/core";
import { Link } from "react-router";
import { CenteredCard } from "../CenteredCard";

export function NotFoundPage() {
  return (
    <CenteredCard title="Page not found">
      <Text>There is nothing at this address. It may have moved, or the link may be mistyped.</Text>
      <Button component={Link} to="/">
        Go home
      </Button>
    </CenteredCard>
  );
}
