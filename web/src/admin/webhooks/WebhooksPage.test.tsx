import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { person, server, signIn } from "../../shared/test-utils";
import { renderAdmin } from "../test-utils";
import { WebhooksPage } from "./WebhooksPage";

const hook = {
  id: "9b0c6f0e-5d7a-4f43-a0b4-1b51c3f0d1a2",
  url: "https://hooks.example.com/gatehouse",
  description: "CRM sync",
  event_types: ["user.created"],
  enabled: false,
  disabled_reason: "Delivery failed 8 times in a row (last: HTTP 503)",
  created_at: "2026-01-15T10:30:00Z",
  updated_at: "2026-01-15T10:30:00Z",
};
const list = (data: unknown[]) => ({
  body: { data, meta: { page: 1, page_size: 20, total_count: data.length, total_pages: 1 } },
});

beforeEach(() => server.reset());

describe("webhooks", () => {
  it("lists subscriptions with why a disabled one stopped; no Create for readonly", async () => {
    signIn(person("readonly"));
    server.on("GET /api/v1/webhooks", list([hook]));
    renderAdmin(<WebhooksPage />, { route: "/webhooks" });
    expect(await screen.findByRole("link", { name: hook.url })).toBeInTheDocument();
    expect(screen.getByText("Delivery failed 8 times in a row (last: HTTP 503)")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Create webhook" })).not.toBeInTheDocument();
  });

  it("shows the signing secret once, after creation", async () => {
    signIn(person("admin"));
    server.on("GET /api/v1/webhooks", list([]));
    server.on("POST /api/v1/webhooks", (call) => ({
      status: 201,
      body: {
        ...hook,
        ...(call.body as object),
        enabled: true,
        disabled_reason: null,
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      },
    }));
    renderAdmin(<WebhooksPage />, { route: "/webhooks" });
    await screen.findByText(/No webhooks yet/);
    await userEvent.click(screen.getByRole("button", { name: "Create webhook" }));
    const form = screen.getByRole("dialog", { name: "Create webhook" });
    await userEvent.click(within(form).getByRole("button", { name: "Create webhook" }));
    expect(within(form).getByText("Choose at least one event type")).toBeInTheDocument();
    await userEvent.type(within(form).getByLabelText(/^URL/), "https://hooks.example.com/gatehouse");
    await userEvent.click(within(form).getByLabelText("user.created"));
    await userEvent.click(within(form).getByLabelText("user.deleted"));
    await userEvent.click(within(form).getByRole("button", { name: "Create webhook" }));
    await waitFor(() => expect(server.callsTo("POST", "/api/v1/webhooks")).toHaveLength(1));
    expect(server.callsTo("POST", "/api/v1/webhooks")[0]!.body).toEqual({
      url: "https://hooks.example.com/gatehouse",
      description: "",
      event_types: ["user.created", "user.deleted"],
    });
    const secret = await screen.findByRole("dialog", { name: "Webhook created" });
    expect(secret).toHaveTextContent("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    expect(secret).toHaveTextContent("This is the only time Gatehouse shows the signing secret.");
    await userEvent.click(within(secret).getByRole("button", { name: "I have stored it" }));
    await waitFor(() => expect(screen.queryByText(/whsec_/)).not.toBeInTheDocument());
  });

  it("choosing every type sends * alone", async () => {
    signIn(person("admin"));
    server.on("GET /api/v1/webhooks", list([]));
    server.on("POST /api/v1/webhooks", { status: 201, body: { ...hook, secret: "whsec_x" } });
    renderAdmin(<WebhooksPage />, { route: "/webhooks" });
    await userEvent.click(await screen.findByRole("button", { name: "Create webhook" }));
    const form = screen.getByRole("dialog", { name: "Create webhook" });
    await userEvent.type(within(form).getByLabelText(/^URL/), "https://hooks.example.com/all");
    await userEvent.click(within(form).getByLabelText("user.created"));
    await userEvent.click(within(form).getByLabelText(/^Every event type/));
    expect(within(form).getByLabelText("user.created")).toBeDisabled();
    await userEvent.click(within(form).getByRole("button", { name: "Create webhook" }));
    await waitFor(() => expect(server.callsTo("POST", "/api/v1/webhooks")).toHaveLength(1));
    expect((server.callsTo("POST", "/api/v1/webhooks")[0]!.body as { event_types: string[] }).event_types).toEqual([
      "*",
    ]);
  });
});
