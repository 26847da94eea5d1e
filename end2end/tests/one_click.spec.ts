import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { hydrated, signedIn } from './helpers';

// Created by run.sh: an editor and a member only this test uses.
const EDITOR = { email: 'eve@e2e.test', name: 'Eve Editor' };
const MEMBER = { email: 'lia@e2e.test', name: 'Lia Link' };

test('an editor creates a one-click link in the blade; a fresh browser continues with it once', async ({ page, browser }) => {
  await signedIn(page, EDITOR.email);
  await page.goto(`/admin/members?q=${encodeURIComponent(MEMBER.email)}`);
  await hydrated(page);
  await page.getByRole('table', { name: 'Members' }).getByRole('link', { name: MEMBER.name, exact: true }).click();
  const blade = page.getByRole('dialog', { name: 'User information' });
  await blade.getByRole('toolbar', { name: 'Member actions' }).getByRole('button', { name: 'One-click link' }).click();
  const panel = blade.getByRole('region', { name: 'One-click login links' });
  await expect(panel.getByText('No outstanding links.')).toBeVisible();
  await panel.getByLabel('Valid for (minutes)').fill('30');
  await panel.getByRole('button', { name: 'Create link' }).click();
  const address = panel.getByLabel('Login link (shown only now)');
  await expect(address).toHaveValue(/\/one-click\/\d+\/[A-Za-z0-9_-]{43}$/);
  const url = await address.inputValue();
  // Listed with its creator, and the Copy button answers one way or the other.
  await expect(panel.getByRole('table', { name: 'Outstanding one-click links' }).getByRole('cell', { name: EDITOR.name })).toBeVisible();
  await panel.getByRole('button', { name: 'Copy' }).click();
  await expect(panel.getByText(/Copied to the clipboard|select the link and copy it yourself/)).toBeVisible();
  const serious = (await new AxeBuilder({ page }).include('.blade').analyze()).violations.filter(
    (v) => v.impact === 'serious' || v.impact === 'critical',
  );
  expect(serious.map((v) => v.id)).toEqual([]);
  await page.screenshot({ path: 'test-results/one-click-blade.png', fullPage: true });

  // Someone else's browser opens it: a confirmation, nothing used up yet.
  const fresh = await browser.newContext();
  const visitor = await fresh.newPage();
  const opened = await visitor.goto(url);
  expect(opened?.status()).toBe(200);
  await expect(visitor.getByRole('heading', { name: `Continue as ${MEMBER.name}` })).toBeVisible();
  await visitor.screenshot({ path: 'test-results/one-click-confirm.png', fullPage: true });
  await visitor.getByRole('button', { name: 'Continue' }).click();
  await expect(visitor).toHaveURL(/\/$/);
  await hydrated(visitor);
  await expect(visitor.getByRole('button', { name: 'Sign out' })).toBeVisible();
  await expect(visitor.getByText(MEMBER.name).first()).toBeVisible();

  // Opened again: the generic failure page.
  const again = await visitor.goto(url);
  expect(again?.status()).toBe(404);
  await expect(visitor.getByRole('heading', { name: 'This link cannot be used' })).toBeVisible();
  await visitor.screenshot({ path: 'test-results/one-click-used.png', fullPage: true });
  await fresh.close();

  // The blade no longer lists it.
  await page.reload();
  await hydrated(page);
  await blade.getByRole('button', { name: 'One-click link' }).click();
  await expect(blade.getByRole('region', { name: 'One-click login links' }).getByText('No outstanding links.')).toBeVisible();
});
