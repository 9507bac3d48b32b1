// The dashboard is served by the API process under /app (api/spa.py); `npm run dev` proxies
// the API so the same relative URLs work in development.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  base: "/app/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 2000 },
  server: { proxy: { "/v1": "http://127.0.0.1:18080" } },
});
