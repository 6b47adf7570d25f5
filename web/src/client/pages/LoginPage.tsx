import { Anchor, Group } from "@mantine/core";
import { Link, useNavigate } from "react-router";
import { LoginForm } from "../../shared/LoginForm";
import { CenteredCard } from "../CenteredCard";
import { useReturnPath } from "../guards";

export function LoginPage() {
  const navigate = useNavigate();
  const target = useReturnPath();
  return (
    <CenteredCard
      title="Log in"
      footer={
        <>
          New here?{" "}
          <Anchor component={Link} to="/signup" size="sm">
            Create an account
          </Anchor>
        </>
      }
    >
      <LoginForm onLoggedIn={() => navigate(target, { replace: true })} />
      <Group justify="center">
        <Anchor component={Link} to="/forgot-password" size="sm">
          Forgot your password?
        </Anchor>
      </Group>
    </CenteredCard>
  );
}
