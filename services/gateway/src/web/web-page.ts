import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { Router, type RequestHandler } from 'express';
import { notFound } from '../http/error-mapper.js';

/**
 * The page's folder: `services/gateway/public`, two levels above this module both in `src/web/` (tests) and in
 * `dist/web/` (the build, the embedded mode, the image, which copies `public/` beside `dist/`).
 */
export const WEB_ROOT = fileURLToPath(new URL('../../public/', import.meta.url));

/**
 * The page's content security policy: its own scripts, styles and images only (no inline script or style, no
 * eval), fetch and WebSocket to this origin only (CSP 3: `'self'` covers ws: and wss: of the same host), no
 * plugins, no framing, forms and <base> nowhere else. The API keeps its own stricter policy.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/** Names that are not fingerprinted: the browser keeps a copy but asks (ETag, Last-Modified) before using it. */
const REVALIDATE = 'no-cache';

const pageHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', PAGE_CSP);
  next();
};

/**
 * `GET /` (the page) and `GET /assets/{file}` (its ES modules and style sheet), before authentication: the
 * page signs in by itself. Plain files, no build step, nothing fetched from elsewhere.
 */
export function webPageRoutes(root: string = WEB_ROOT): Router {
  const router = Router();
  if (!existsSync(root)) return router; // an image built without the page still serves the API
  // Rooted at the page's folder and reached only through `/assets/:file`: one flat folder, one route label.
  const files = express.static(root, {
    index: false,
    redirect: false,
    dotfiles: 'ignore',
    etag: true,
    lastModified: true,
    cacheControl: false,
    setHeaders: (res) => res.setHeader('Cache-Control', REVALIDATE),
  });
  router.get('/', pageHeaders, (_req, res, next) => {
    res.setHeader('Cache-Control', REVALIDATE);
    res.sendFile('index.html', { root, lastModified: true, cacheControl: false }, (err) => {
      if (err) next(err);
    });
  });
  // A missing asset is a 404 here, not a 401 from the authentication behind.
  router.get('/assets/:file', pageHeaders, files, notFound);
  return router;
}
