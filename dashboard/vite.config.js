// The dashboard is served by the daemon under /dashboard/ (see ARCHITECTURE.md, `api::dashboard`).
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/dashboard/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
});
