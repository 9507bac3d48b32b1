// One door to the API: same-origin fetch with the session cookie, the CSRF token on writes,
// and the API's problem documents turned into ApiProblem errors a page can show by field.

export type FieldProblem = { field?: string; problem?: string };

export class ApiProblem extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public problems: FieldProblem[] = [],
    public body: any = null,
  ) {
    super(message);
  }

  /** The message for one form field (matched on the problem's field or the end of its loc). */
  forField(name: string): string | undefined {
    const hits = this.problems.filter((p) => {
      const where = (p.field ?? "").replace(/^body\./, "");
      return where === name || where.endsWith("." + name) || where.startsWith(name + ".");
    });
    return hits.length ? hits.map((p) => p.problem).join("; ") : undefined;
  }
}

function cookie(name: string): string | undefined {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : undefined;
}

let csrfToken: string | undefined;
export function rememberCsrf(token: string | null | undefined) {
  csrfToken = token ?? undefined;
}

export type Reply<T> = { data: T; etag: string | null; status: number };

export async function request<T = any>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const h: Record<string, string> = { Accept: "application/json", ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (method !== "GET") {
    const token = csrfToken ?? cookie("ls_csrf");
    if (token) h["X-CSRF-Token"] = token;
  }
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: h,
      credentials: "include",  // same origin; "include" matches the session preload of index.html
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiProblem(0, "network", "the API is not answering: check that the platform is running");
  }
  const text = await res.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) {
    const message = (data && (data.message || data.detail)) || `${res.status} ${res.statusText}`;
    throw new ApiProblem(res.status, data?.error ?? String(res.status), String(message), data?.problems ?? [], data);
  }
  return { data: data as T, etag: res.headers.get("ETag"), status: res.status };
}

export const get = async <T = any>(path: string) => (await request<T>("GET", path)).data;

/** A query string from an object; arrays repeat the key, empty values are left out. */
export function qs(params: Record<string, string | number | string[] | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.append(k, String(v));
  }
  const s = u.toString();
  return s ? "?" + s : "";
}
