// Who is signed in, what they may do (the same action -> roles table as domain/access.py), and
// which brand (tenant) the pages are looking at.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { ApiProblem, get, rememberCsrf, request } from "./api";

export type Me = {
  kind: string;
  id: string;
  name: string;
  platform_admin: boolean;
  roles: Record<string, string>;
  partners: Record<string, string>;
  csrf?: string | null;
};

// mirrors domain/access.py ACTIONS; the API checks again whatever the page offers
const ACTIONS: Record<string, string[]> = {
  "analytics.read": ["brand_admin", "analyst", "partner"],
  "config.read": ["brand_admin", "analyst"],
  "config.write": ["brand_admin"],
  "leads.read": ["brand_admin", "analyst", "ingest"],
  "keys.read": ["brand_admin"],
  "keys.write": ["brand_admin"],
  "people.read": ["brand_admin"],
  "people.write": ["brand_admin"],
  "audit.read": ["brand_admin"],
  "accounting.read": ["brand_admin"],
  "subjects.export": ["brand_admin"],
  "subjects.erase": ["brand_admin"],
  "platform.read": [],
  "platform.write": [],
};

export function may(me: Me | null, action: string, tenant?: string | null): boolean {
  if (!me) return false;
  if (me.platform_admin) return true;
  const allowed = ACTIONS[action] ?? [];
  if (tenant) return allowed.includes(me.roles[tenant] ?? "");
  return Object.values(me.roles).some((r) => allowed.includes(r));
}

/** Whether the metric catalogue may narrow what this person sees (a partner's brand decides which
 * metrics its partners get): only then must a page wait for it before asking for numbers. */
export function catalogueNarrows(me: Me | null, tenant?: string | null): boolean {
  if (!me || me.platform_admin) return false;
  return tenant ? me.roles[tenant] === "partner" : Object.values(me.roles).includes("partner");
}

type SessionValue = {
  me: Me | null;
  loading: boolean;
  tenants: string[];
  tenant: string | null;
  setTenant: (t: string) => void;
  signIn: (email: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
  refresh: () => Promise<void>;
};

const SessionContext = createContext<SessionValue | null>(null);

export function useSession(): SessionValue {
  const v = useContext(SessionContext);
  if (!v) throw new Error("useSession outside SessionProvider");
  return v;
}

const TENANT_KEY = "leadstream.tenant";

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState(true);
  const [allTenants, setAllTenants] = useState<string[]>([]);
  const [tenant, setTenantState] = useState<string | null>(null);

  const adopt = useCallback(async (who: Me | null) => {
    setMe(who);
    if (who?.csrf) rememberCsrf(who.csrf);
    let names = who ? Object.keys(who.roles).sort() : [];
    if (who?.platform_admin) {
      try {
        const rows = await get<{ id: string }[]>("/v1/tenants");
        names = rows.map((r) => r.id).sort();
      } catch {
        /* the tenant picker stays as the roles say */
      }
    }
    setAllTenants(names);
    const fromUrl = new URLSearchParams(window.location.search).get("tenant");
    const saved = localStorage.getItem(TENANT_KEY);
    const pick = [fromUrl, saved].find((t) => t && names.includes(t)) ?? names[0] ?? null;
    setTenantState(pick);
  }, []);

  const refresh = useCallback(async () => {
    try {
      await adopt(await get<Me>("/v1/session"));
    } catch (e) {
      if (e instanceof ApiProblem && (e.status === 401 || e.status === 403)) await adopt(null);
      else throw e;
    } finally {
      setLoading(false);
    }
  }, [adopt]);

  useEffect(() => {
    refresh().catch(() => setLoading(false));
  }, [refresh]);

  const value = useMemo<SessionValue>(
    () => ({
      me,
      loading,
      tenants: allTenants,
      tenant,
      setTenant: (t: string) => {
        localStorage.setItem(TENANT_KEY, t);
        setTenantState(t);
      },
      signIn: async (email, password) => {
        const { data } = await request<Me>("POST", "/v1/session", { email, password });
        await adopt(data);
      },
      signOut: async () => {
        try {
          await request("DELETE", "/v1/session");
        } finally {
          rememberCsrf(null);
          await adopt(null);
        }
      },
      refresh,
    }),
    [me, loading, allTenants, tenant, adopt, refresh],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
