// The routes, each page offered only to the roles that may use it (the API refuses the rest anyway).
import { Suspense, type ReactElement } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { Loading } from "./components/States";
import { Shell } from "./Shell";
import { may, useSession } from "./session";
import { SignInPage } from "./pages/SignIn";

import { AccountingPage } from "./pages/Accounting";
import { AuditPage } from "./pages/Audit";
import { FleetPage } from "./pages/Fleet";
import { KeysPage } from "./pages/Keys";
import { LeadsPage } from "./pages/Leads";
import { ListEditPage } from "./pages/ListEdit";
import { ListsPage } from "./pages/Lists";
import { MessagesPage } from "./pages/Messages";
import { PasswordPage } from "./pages/Password";
import { PeoplePage } from "./pages/People";
import { ExperimentsPage } from "./pages/Experiments";
import { TriggersPage } from "./pages/Triggers";

import { AnalyticsPage } from "./pages/Analytics";
import { OverviewPage } from "./pages/Overview";

// Every page is in the main bundle (no second round trip before a page asks for its data); the
// charts load as a chunk of their own (components/Charts.tsx), started by the pages that draw
// them once their data is asked for, and the page's numbers and tables show without waiting.

export type Page = { path: string; label: string; action: string; element: ReactElement; nav?: boolean };

export const PAGES: Page[] = [
  { path: "/overview", label: "Overview", action: "analytics.read", element: <OverviewPage /> },
  { path: "/analytics", label: "Analytics", action: "analytics.read", element: <AnalyticsPage /> },
  { path: "/lists", label: "Lists", action: "config.read", element: <ListsPage /> },
  { path: "/lists/:id", label: "List", action: "config.read", element: <ListEditPage />, nav: false },
  { path: "/triggers", label: "Triggers", action: "config.read", element: <TriggersPage /> },
  { path: "/experiments", label: "Experiments", action: "config.read", element: <ExperimentsPage /> },
  { path: "/leads", label: "Leads", action: "leads.read", element: <LeadsPage /> },
  { path: "/messages", label: "Messages", action: "leads.read", element: <MessagesPage /> },
  { path: "/accounting", label: "Accounting", action: "accounting.read", element: <AccountingPage /> },
  { path: "/fleet", label: "Fleet", action: "platform.read", element: <FleetPage /> },
  { path: "/people", label: "People", action: "people.read", element: <PeoplePage /> },
  { path: "/keys", label: "API keys", action: "keys.read", element: <KeysPage /> },
  { path: "/audit", label: "Audit log", action: "audit.read", element: <AuditPage /> },
];

export function App() {
  const { me, loading, tenant } = useSession();
  const location = useLocation();
  if (loading) return <Loading what="your session" />;
  if (!me) {
    return (
      <Routes>
        <Route path="/sign-in" element={<SignInPage />} />
        <Route path="*" element={<Navigate to={`/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`} replace />} />
      </Routes>
    );
  }
  const allowed = PAGES.filter((p) => may(me, p.action, p.action === "platform.read" ? null : tenant));
  const home = allowed[0]?.path ?? "/password";
  return (
    <Shell pages={allowed.filter((p) => p.nav !== false)}>
      <Suspense fallback={<Loading what="the page" />}>
      <Routes>
        {allowed.map((p) => (
          <Route key={p.path} path={p.path} element={p.element} />
        ))}
        <Route path="/password" element={<PasswordPage />} />
        <Route path="/sign-in" element={<AfterSignIn home={home} />} />
        <Route path="/" element={<Navigate to={home} replace />} />
        <Route path="*" element={<NotHere home={home} />} />
      </Routes>
      </Suspense>
    </Shell>
  );
}

// signed in on the sign-in page: go where the person was headed (a path of this app only)
function AfterSignIn({ home }: { home: string }) {
  const next = new URLSearchParams(useLocation().search).get("next");
  const safe = next && next !== "/" && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/sign-in") ? next : home;
  return <Navigate to={safe} replace />;
}

function NotHere({ home }: { home: string }) {
  return (
    <div data-testid="not-allowed">
      <h2>Not available</h2>
      <p>
        This page does not exist or your role may not see it. <a href={`/app${home}`}>Go back</a>.
      </p>
    </div>
  );
}
