import AxeBuilder from '@axe-core/playwright';
import { expect, Page, test } from '@playwright/test';
import { ADMIN, hydrated, MEMBER, PASSWORD, signedIn } from './helpers';

// Created by run.sh: a support engineer and a member only these tests use.
const SUPPORT = { email: 'sam@e2e.test', name: 'Sam Ortiz' };
const TARGET = { email: 'tom@e2e.test', name: 'Tom Target' };

async function memberId(page: Page, who: { email: string; name: string }): Promise<string> {
  await page.goto(`/admin/members?q=${encodeURIComponent(who.email)}`);
  await hydrated(page);
  const link = page.getByRole('table', { name: 'Members' }).getByRole('link', { name: who.name, exact: true });
  const href = await link.getAttribute('href');
  return href!.match(/\/admin\/members\/(\d+)/)![1];
}

async function expectNoSeriousViolations(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(', ')}`)).toEqual([]);
}

test('from the blade, Login on behalf opens a new window; a wrong password is refused, the right one switches', async ({ page, context }) => {
  await signedIn(page, SUPPORT.email);
  const id = await memberId(page, TARGET);
  await page.goto(`/admin/members/${id}`);
  await hydrated(page);
  const blade = page.getByRole('dialog', { name: 'User information' });
  const [popup] = await Promise.all([
    context.waitForEvent('page'),
    blade.getByRole('button', { name: 'Login on behalf' }).click(),
  ]);
  await popup.waitForLoadState();
  await expect(popup).toHaveURL(new RegExp(`/on-behalf/${id}`));
  await hydrated(popup);
  await expect(popup.getByRole('heading', { name: 'Login on behalf' })).toBeVisible();
  await expect(popup.getByText(TARGET.name).first()).toBeVisible();
  await expect(popup.getByText(SUPPORT.name).first()).toBeVisible();
  await expectNoSeriousViolations(popup);

  await popup.getByLabel('Your password').fill('not my password');
  await popup.getByLabel('Reason').fill('Ticket T-1001');
  await popup.getByRole('button', { name: 'Login on behalf' }).click();
  await expect(popup.getByText('Your password is incorrect.')).toBeVisible();
  await expect(popup.getByRole('region', { name: 'Impersonation banner' })).toHaveCount(0);

  await popup.getByLabel('Your password').fill(PASSWORD);
  await popup.getByRole('button', { name: 'Login on behalf' }).click();
  const banner = popup.getByRole('region', { name: 'Impersonation banner' });
  await expect(banner).toBeVisible();
  await expect(popup).toHaveURL(/\/$/);
  await expect(banner).toContainText(`You, ${SUPPORT.name}, are viewing as ${TARGET.name} — view only.`);
  await expect(banner).toContainText(/Time left: (29|30):\d\d/);
  await expect(popup).toHaveTitle(/^\[On behalf\]/);
  await expectNoSeriousViolations(popup);

  // The banner is on every page, and the member's rights apply (Tom has no admin access).
  const forbidden = await popup.goto('/admin/members');
  expect(forbidden?.status()).toBe(403);
  await expect(banner).toBeVisible();
  await popup.goto('/');
  await hydrated(popup);
  await expect(banner).toBeVisible();

  // The first window picks up the change of identity when it is used again.
  await page.bringToFront();
  await page.evaluate(() => window.dispatchEvent(new Event('focus')));
  await expect(page.getByRole('region', { name: 'Impersonation banner' })).toBeVisible();

  // Leave: back to the member's blade as oneself, the banner gone.
  await popup.bringToFront();
  await banner.getByRole('button', { name: 'Leave impersonation' }).click();
  await expect(popup).toHaveURL(new RegExp(`/admin/members/${id}$`));
  await expect(popup.getByRole('dialog', { name: 'User information' })).toBeVisible();
  await expect(popup.getByRole('region', { name: 'Impersonation banner' })).toHaveCount(0);
  await expect(popup.getByText(SUPPORT.name).first()).toBeVisible();
});

test('the Login as menu lists the members with admin access whose proxy login permission names you', async ({ page, context }) => {
  // Ada gives herself proxy login permission for Sam (admin access) and for Ann (none),
  // in the member editor.
  await signedIn(page, ADMIN.email);
  const adaId = await memberId(page, ADMIN);
  const samId = await memberId(page, SUPPORT);
  const annId = await memberId(page, MEMBER);
  for (const id of [samId, annId]) {
    await page.goto(`/admin/members/${id}`);
    await hydrated(page);
    const blade = page.getByRole('dialog', { name: 'User information' });
    await blade.getByRole('button', { name: 'Edit' }).click();
    const proxies = blade.getByLabel('Proxy login permission', { exact: true });
    const current = await proxies.inputValue();
    if (!current.split(/[ ,]+/).includes(adaId)) {
      await proxies.fill(current ? `${current}, ${adaId}` : adaId);
      await blade.getByRole('button', { name: 'Save' }).click();
      await expect(blade.getByRole('button', { name: 'Save' })).toHaveCount(0);
    }
  }

  await page.goto('/');
  await hydrated(page);
  await page.getByRole('button', { name: 'Login as' }).click();
  const menu = page.getByRole('list', { name: 'Log in on behalf of' });
  const entry = menu.getByRole('link', { name: new RegExp(SUPPORT.name) });
  await expect(entry).toBeVisible();
  // As in Kuroco, a member without admin access is reached from the blade, not here.
  await expect(menu.getByRole('link', { name: new RegExp(MEMBER.name) })).toHaveCount(0);
  await expect(page.getByText('Only members with admin access are listed here.')).toBeVisible();
  const [popup] = await Promise.all([context.waitForEvent('page'), entry.click()]);
  await popup.waitForLoadState();
  await expect(popup).toHaveURL(new RegExp(`/on-behalf/${samId}$`));
  await expect(popup.getByLabel('Your password')).toBeVisible();
});

test('without permission there is no button, and a direct visit is refused with a clear page', async ({ page }) => {
  await signedIn(page, SUPPORT.email);
  const adaId = await memberId(page, ADMIN);
  await page.goto(`/admin/members/${adaId}`);
  await hydrated(page);
  const blade = page.getByRole('dialog', { name: 'User information' });
  await expect(blade.getByText(ADMIN.email)).toBeVisible();
  await expect(blade.getByRole('button', { name: 'Login on behalf' })).toHaveCount(0);
  const response = await page.goto(`/on-behalf/${adaId}`);
  expect(response?.status()).toBe(403);
  await expect(page.getByRole('heading', { name: 'Login on behalf is not possible' })).toBeVisible();
  await expect(page.getByText('ranks below yours')).toBeVisible();
  await expect(page.getByLabel('Your password')).toHaveCount(0);
});
