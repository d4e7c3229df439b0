// The sign-in page.
import { SignInForm } from "../ui/SignInForm";

export function Login() {
  return (
    <div className="login-page">
      <SignInForm
        className="login card"
        buttonClassName="btn primary"
        intro={
          <>
            <h1>MaintAInPro</h1>
            <p className="sub">Sign in to your organization</p>
          </>
        }
      />
    </div>
  );
}
