import { Container, Paper, Title } from "@mantine/core";
import { Route, Routes } from "react-router";
import { LoginForm } from "../shared/LoginForm";

export function App() {
  return (
    <Routes>
      <Route
        path="*"
        element={
          <Container size={420} py="xl">
            <Title order={1}>Gatehouse admin</Title>
            <Paper withBorder p="lg" mt="md">
              <LoginForm />
            </Paper>
          </Container>
        }
      />
    </Routes>
  );
}
