import { defineConfig } from 'vite';

// Dev server: `npm run dev` proxies the API (and the live WebSocket) to a local sensoworks.
const target = process.env.SW_API ?? 'http://localhost:8080';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { outDir: 'dist', sourcemap: true, chunkSizeWarningLimit: 400 },
  server: {
    proxy: {
      '/api/v1/ws': { target, ws: true },
      '/api': target,
    },
  },
});
