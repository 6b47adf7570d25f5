// The portal's own: only it draws charts (Mantine's core styles come with AppProviders).
import "@mantine/charts/styles.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router";
import { AppProviders } from "../shared/ui";
import { App } from "./App";

const root = document.getElementById("root");
if (!root) throw new Error("index.html has no #root element");

createRoot(root).render(
  <StrictMode>
    <AppProviders>
      <BrowserRouter basename="/admin">
        <App />
      </BrowserRouter>
    </AppProviders>
  </StrictMode>,
);
