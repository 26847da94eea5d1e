import AxeBuilder from '@axe-core/playwright';
import { Browser, expect, Page, test } from '@playwright/test';
import { hydrated, PASSWORD, signedIn } from './helpers';

// Step 11: a session on behalf views only unless the actor chooses to act, at the start
// or later from the banner (their password again, and a reason).
// Created by run.sh (see on_behalf.spec.ts): a support engineer and a member.
const SUPPORT = { email: 'sam@e2e.test', name: 'Sam Ortiz' };
const TARGET = { email: 'tom@e2e.test', name: 'Tom Target' };
const VIEW_ONLY_REASON = 'Viewing only — choose Act on behalf to make changes.';
const SESSIONS_REASON = "Not on someone's behalf: only the member ends their own sessions.";

async function expectNoSeriousViolations(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(', ')}`)).toEqual([]);
}

/** Tom's ID, from the members list (Sam has admin access). */
async function targetId(page: Page): Promise<string> {
  await page.goto(`/admin/members?q=${encodeURIComponent(TARGET.email)}`);
  await hydrated(page);
  const link = page.getByRole('table', { name: 'Members' }).getByRole('link', { name: TARGET.name, exact: true });
  return (await link.getAttribute('href'))!.match(/\/admin\/members\/(\d+)/)![1];
}

/** Sam, signed in in a context of his own, logs in on Tom's behalf in `mode`. */
async function onBehalf(browser: Browser, reason: string, mode: 'View only' | 'Act on behalf' = 'View only') {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signedIn(page, SUPPORT.email);
  await page.goto(`/on-behalf/${await targetId(page)}`);
  await hydrated(page);
  await page.getByRole('group', { name: 'Mode' }).getByRole('radio', { name: mode }).check();
  await page.getByLabel('Your password').fill(PASSWORD);
  await page.getByLabel('Reason').fill(reason);
  await page.getByRole('button', { name: 'Login on behalf' }).click();
  const banner = page.getByRole('region', { name: 'Impersonation banner' });
  await expect(banner).toBeVisible();
  await hydrated(page);
  return { context, page, banner };
}

/**
 * Holds every WebAssembly download until `release` is called, so the page is the
 * server's HTML alone (see members_search.spec.ts).
 */
async function holdWebAssembly(page: Page): Promise<() => void> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  await page.route('**/*.wasm', async (route) => {
    await released;
    await route.continue().catch(() => {});
  });
  return release;
}

async function notHydrated(page: Page) {
  await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
}

test('the window asks for a Mode, View only by default, and a view-only session says so in the banner', async ({ page }) => {
  await signedIn(page, SUPPORT.email);
  await page.goto(`/on-behalf/${await targetId(page)}`);
  await hydrated(page);
  const mode = page.getByRole('group', { name: 'Mode' });
  await expect(mode).toBeVisible();
  await expect(mode.getByRole('radio', { name: 'View only' })).toBeChecked();
  await expect(mode.getByRole('radio', { name: 'Act on behalf' })).not.toBeChecked();
  await expect(mode.getByRole('radio', { name: 'Act on behalf' })).toBeEnabled();
  await expectNoSeriousViolations(page);

  await page.getByLabel('Your password').fill(PASSWORD);
  await page.getByLabel('Reason').fill('Ticket VO-1');
  await page.getByRole('button', { name: 'Login on behalf' }).click();
  const banner = page.getByRole('region', { name: 'Impersonation banner' });
  await expect(banner).toContainText(`You, ${SUPPORT.name}, are viewing as ${TARGET.name} — view only.`);
  await expect(banner.getByRole('button', { name: 'Act on behalf' })).toBeVisible();
  await expect(page).toHaveTitle(/^\[On behalf\]/);
  await hydrated(page);
  await expectNoSeriousViolations(page);
  await banner.getByRole('button', { name: 'Leave impersonation' }).click();
  await expect(page.getByRole('dialog', { name: 'User information' })).toBeVisible();
});

test('view only: the order form, the name and the End buttons are disabled with their reason, in the server\'s HTML already', async ({ browser, request }) => {
  // A session of Tom's own, for the Sessions page to offer to end.
  const login = await request.post('/api/v1/login', { data: { email: TARGET.email, password: PASSWORD } });
  expect(login.status()).toBe(200);
  const { context, page, banner } = await onBehalf(browser, 'Ticket VO-2');

  const release = await holdWebAssembly(page);
  await page.goto('/account/orders', { waitUntil: 'domcontentloaded' });
  await expect(page.getByRole('heading', { name: 'Orders' })).toBeVisible();
  await notHydrated(page);
  await expect(page.getByLabel('Product')).toBeDisabled();
  await expect(page.getByLabel('Quantity')).toBeDisabled();
  await expect(page.getByRole('button', { name: 'Place order' })).toBeDisabled();
  await expect(page.getByText(VIEW_ONLY_REASON)).toBeVisible();

  await page.goto('/', { waitUntil: 'domcontentloaded' });
  await expect(page.getByRole('heading', { name: 'My account' })).toBeVisible();
  await notHydrated(page);
  await expect(page.getByLabel('Display name')).toBeDisabled();
  await expect(page.getByRole('button', { name: 'Save name' })).toBeDisabled();
  await expect(page.getByText(VIEW_ONLY_REASON)).toBeVisible();

  await page.goto('/account/sessions', { waitUntil: 'domcontentloaded' });
  const ends = page.getByRole('table', { name: 'Sessions' }).getByRole('button', { name: /^End session/ });
  await expect(ends.first()).toBeVisible();
  await notHydrated(page);
  for (const end of await ends.all()) await expect(end).toBeDisabled();
  await expect(page.getByText(SESSIONS_REASON)).toBeVisible();

  // Hydrated, they stay as they are.
  release();
  await hydrated(page);
  for (const end of await ends.all()) await expect(end).toBeDisabled();
  await page.getByRole('navigation', { name: 'My account' }).getByRole('link', { name: 'Orders' }).click();
  await expect(page.getByRole('button', { name: 'Place order' })).toBeDisabled();
  await expect(page.getByText(VIEW_ONLY_REASON)).toBeVisible();
  await expectNoSeriousViolations(page);
  await banner.getByRole('button', { name: 'Leave impersonation' }).click();
  await expect(page.getByRole('dialog', { name: 'User information' })).toBeVisible();
  await context.close();
});

test('Act on behalf in the banner asks for the password and a reason again; a wrong one keeps viewing, the right one acts', async ({ browser }) => {
  const { context, page, banner } = await onBehalf(browser, 'Ticket VO-3');
  await page.getByRole('navigation', { name: 'My account' }).getByRole('link', { name: 'Orders' }).click();
  await expect(page.getByRole('button', { name: 'Place order' })).toBeDisabled();

  await banner.getByRole('button', { name: 'Act on behalf' }).click();
  await banner.getByLabel('Your password').fill('not my password');
  await banner.getByLabel('Reason').fill('Tom asked for a desk lamp');
  await banner.getByRole('button', { name: 'Start acting' }).click();
  await expect(banner.getByText('Your password is incorrect.')).toBeVisible();
  await expect(banner).toContainText(`are viewing as ${TARGET.name}`);
  await expect(page.getByRole('button', { name: 'Place order' })).toBeDisabled();

  // Cancel folds the form away, focus back on the button; opened again, it starts afresh.
  await banner.getByRole('button', { name: 'Cancel' }).click();
  await expect(banner.getByLabel('Your password')).toBeHidden();
  await expect(banner.getByRole('button', { name: 'Act on behalf' })).toBeFocused();
  await banner.getByRole('button', { name: 'Act on behalf' }).click();
  await expect(banner.getByLabel('Your password')).toBeFocused();
  await expect(banner.getByLabel('Your password')).toHaveValue('');
  await expect(banner.getByText('Your password is incorrect.')).toHaveCount(0);
  await banner.getByLabel('Your password').fill(PASSWORD);
  await banner.getByLabel('Reason').fill('Tom asked for a desk lamp');
  await expectNoSeriousViolations(page);
  await banner.getByRole('button', { name: 'Start acting' }).click();

  await expect(banner).toContainText(`You, ${SUPPORT.name}, are acting as ${TARGET.name}.`);
  await expect(banner.getByRole('button', { name: 'Act on behalf' })).toHaveCount(0);
  await expect(page).toHaveURL(/\/account\/orders$/);
  await hydrated(page);
  await expect(page.getByText(VIEW_ONLY_REASON)).toHaveCount(0);
  await page.getByLabel('Product').selectOption({ label: 'Desk lamp — 39.00' });
  await page.getByLabel('Quantity').fill('1');
  await page.getByRole('button', { name: 'Place order' }).click();
  const row = page.getByRole('table', { name: 'Orders' }).getByRole('row', { name: /Desk lamp/ }).first();
  await expect(row).toContainText(`placed by ${SUPPORT.name} on your behalf`);
  await banner.getByRole('button', { name: 'Leave impersonation' }).click();
  await expect(page.getByRole('dialog', { name: 'User information' })).toBeVisible();
  await context.close();
});

test('the member reads in their Access history what was viewed on their behalf', async ({ browser }) => {
  const reason = 'Ticket VO-4, checking an order';
  const { context, page, banner } = await onBehalf(browser, reason);
  // The window opened My account (the profile); now the orders, and the profile again.
  await expect(page.getByRole('heading', { name: 'My account' })).toBeVisible();
  await page.getByRole('navigation', { name: 'My account' }).getByRole('link', { name: 'Orders' }).click();
  await expect(page.getByRole('table', { name: 'Orders' }).or(page.getByText('No orders yet.'))).toBeVisible();
  await page.goto('/');
  await hydrated(page);
  await banner.getByRole('button', { name: 'Leave impersonation' }).click();
  await expect(page.getByRole('dialog', { name: 'User information' })).toBeVisible();
  await context.close();

  const member = await browser.newContext();
  const tom = await member.newPage();
  await signedIn(tom, TARGET.email);
  await tom.goto('/account/access-history');
  await hydrated(tom);
  const row = tom.getByRole('table', { name: 'Access history' }).getByRole('row').filter({ hasText: reason });
  // The view trail is written behind the requests, within a second.
  await expect(async () => {
    await tom.reload();
    await expect(row).toContainText('Viewed:', { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await expect(row).toContainText(SUPPORT.name);
  await expect(row).toContainText('View only');
  await expect(row.getByText(/^Viewed: /)).toContainText('Orders');
  await expect(row.getByText(/^Viewed: /)).toContainText('Profile');
  await expectNoSeriousViolations(tom);
  await member.close();
});
