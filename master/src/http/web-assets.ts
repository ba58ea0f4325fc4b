/**
 * Browser libraries the chat UI loads as ES modules, served from the
 * installed packages (production dependencies), one file each, under
 * `/vendor/`: marked (Markdown), DOMPurify (sanitising its HTML) and
 * highlight.js (code blocks); uPlot and its stylesheet for the operator
 * console's charts. No bundler, no copy in the repository: the
 * version is the one package-lock.json pins.
 */
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';

/** `/vendor/<name>` → the file of the installed package. */
export const WEB_VENDOR_FILES: Readonly<Record<string, string>> = {
  'marked.esm.js': fileURLToPath(import.meta.resolve('marked')),
  'purify.es.mjs': fileURLToPath(import.meta.resolve('dompurify')),
  'highlight.min.js': fileURLToPath(
    import.meta.resolve('@highlightjs/cdn-assets/es/highlight.min.js'),
  ),
  // The operator console's charts.
  'uPlot.esm.js': fileURLToPath(import.meta.resolve('uplot/dist/uPlot.esm.js')),
  'uPlot.min.css': fileURLToPath(import.meta.resolve('uplot/dist/uPlot.min.css')),
};

/** Serves WEB_VENDOR_FILES; anything else under /vendor is a 404. */
export function vendorRoutes(): Router {
  const router = express.Router();
  router.get('/:file', (req, res, next) => {
    const path = WEB_VENDOR_FILES[req.params.file];
    if (!path) return next();
    res
      .type(path.endsWith('.css') ? 'text/css' : 'text/javascript')
      .sendFile(path, { maxAge: '1h' });
  });
  return router;
}
