// Load a GET path and keep its loading / error / data state; a null path loads nothing.
import { useCallback, useEffect, useState } from "react";
import { ApiProblem, get } from "../api";

export type Loaded<T> = { data: T | null; error: ApiProblem | null; loading: boolean; reload: () => void };

export function useApi<T = any>(path: string | null, everyMs?: number): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiProblem | null>(null);
  const [loading, setLoading] = useState<boolean>(!!path);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);

  useEffect(() => {
    if (!path) {
      setData(null);
      setLoading(false);
      return;
    }
    let live = true;
    setLoading(true);
    get<T>(path)
      .then((d) => live && (setData(d), setError(null)))
      .catch((e) => live && setError(e instanceof ApiProblem ? e : new ApiProblem(0, "error", String(e))))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [path, tick]);

  useEffect(() => {
    if (!everyMs || !path) return;
    const id = window.setInterval(reload, everyMs);
    return () => window.clearInterval(id);
  }, [everyMs, path, reload]);

  return { data, error, loading, reload };
}
