import { Route, Routes } from "react-router";
import { EnrolmentRedirect, PublicOnly, RequireAuth } from "./guards";
import { ConsentPage } from "./oauth/ConsentPage";
import { AccountDeletedPage } from "./pages/AccountDeletedPage";
import { DataPage } from "./pages/DataPage";
import { ForgotPasswordPage } from "./pages/ForgotPasswordPage";
import { LoginPage } from "./pages/LoginPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { PasswordPage } from "./pages/PasswordPage";
import { ProfilePage } from "./pages/ProfilePage";
import { ResetPasswordPage } from "./pages/ResetPasswordPage";
import { SecurityPage } from "./pages/SecurityPage";
import { SessionsPage } from "./pages/SessionsPage";
import { SignupPage } from "./pages/SignupPage";
import { UndoEmailChangePage } from "./pages/UndoEmailChangePage";
import { VerifyEmailPage } from "./pages/VerifyEmailPage";
import { SignedInLayout } from "./SignedInLayout";

export function App() {
  return (
    <Routes>
      {/* The login decides itself: an application's login (return_to) may be shown to someone logged in. */}
      <Route path="login" element={<LoginPage />} />
      <Route element={<PublicOnly />}>
        <Route path="signup" element={<SignupPage />} />
      </Route>
      {/* Signed in or not: signed out, it sends the person to the application's login. */}
      <Route path="consent" element={<ConsentPage />} />
      {/* Open whether or not someone is logged in: they come from an email. */}
      <Route path="forgot-password" element={<ForgotPasswordPage />} />
      <Route path="reset-password" element={<ResetPasswordPage />} />
      <Route path="verify-email" element={<VerifyEmailPage />} />
      <Route path="undo-email-change" element={<UndoEmailChangePage />} />
      <Route path="account-deleted" element={<AccountDeletedPage />} />
      <Route element={<RequireAuth />}>
        <Route element={<EnrolmentRedirect />}>
          <Route element={<SignedInLayout />}>
            <Route index element={<ProfilePage />} />
            <Route path="password" element={<PasswordPage />} />
            <Route path="sessions" element={<SessionsPage />} />
            <Route path="data" element={<DataPage />} />
            <Route path="security" element={<SecurityPage />} />
          </Route>
        </Route>
      </Route>
      <Route path="*" element={<NotFoundPage />} />
    </Routes>
  );
}
