import { Navigate, Route, Routes } from "react-router";
import { useAuth } from "../shared/auth";
import { useEnrolmentRequired } from "../shared/mfa/queries";
import { PageLoader } from "../shared/ui";
import { AuditPage } from "./audit/AuditPage";
import { ClientPage } from "./clients/ClientPage";
import { ClientsPage } from "./clients/ClientsPage";
import { NewClientPage } from "./clients/NewClientPage";
import { ForcedEnrolmentPage } from "./ForcedEnrolmentPage";
import { Layout } from "./Layout";
import { LoginPage, NotAllowedPage } from "./LoginPage";
import { NotFoundPage } from "./NotFoundPage";
import { OverviewPage } from "./overview/OverviewPage";
import { canReadOverview, canUsePortal, usePermissions } from "./permissions";
import { UserPage } from "./users/UserPage";
import { UsersPage } from "./users/UsersPage";
import { WebhookPage } from "./webhooks/WebhookPage";
import { WebhooksPage } from "./webhooks/WebhooksPage";

export function App() {
  const { status, user } = useAuth();
  const enrolmentRequired = useEnrolmentRequired();
  if (status === "loading") return <PageLoader />;
  // Logged out at any address: the login, then that same page.
  if (status === "signed-out" || !user) return <LoginPage />;
  if (!canUsePortal(user.role)) return <NotAllowedPage />;
  if (enrolmentRequired) return <ForcedEnrolmentPage />;
  return <PortalRoutes />;
}

/** The first screen: the overview for an admin; the users for a readonly admin, who may not see it. */
function FirstScreen() {
  const { role } = usePermissions();
  return canReadOverview(role) ? <OverviewPage /> : <Navigate to="/users" replace />;
}

export function PortalRoutes() {
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route index element={<FirstScreen />} />
        <Route path="login" element={<Navigate to="/" replace />} />
        <Route path="users" element={<UsersPage />} />
        <Route path="users/:id" element={<UserPage />} />
        <Route path="audit" element={<AuditPage />} />
        <Route path="clients" element={<ClientsPage />} />
        <Route path="clients/new" element={<NewClientPage />} />
        <Route path="clients/:id" element={<ClientPage />} />
        <Route path="webhooks" element={<WebhooksPage />} />
        <Route path="webhooks/:id" element={<WebhookPage />} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}
