// The contract from another language: a Node.js client built on the TypeScript stubs that ts-proto
// generates (buf.gen.ts.yaml) and @grpc/grpc-js, against a real server. tests/test_node_client.py starts
// the server, creates an API key with the real CLI and runs this file with `node --test`.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import assert from "node:assert/strict";
import { test } from "node:test";

import { ChannelCredentials, Metadata, ServiceError, status } from "@grpc/grpc-js";

import { BadRequest } from "../../gen/clients/ts/google/rpc/error_details";
import { Status } from "../../gen/clients/ts/google/rpc/status";
import { Invoice, InvoiceStatus, PaymentStatus } from "../../gen/clients/ts/invoices/v1/invoice";
import {
  CreateInvoiceRequest,
  CreateInvoiceResponse,
  DownloadAttachmentRequest,
  FinalizeInvoiceRequest,
  FinalizeInvoiceResponse,
  InvoiceServiceClient,
  ListInvoicesRequest,
  RecordPaymentRequest,
  RecordPaymentResponse,
  UploadAttachmentRequest,
  UploadAttachmentResponse,
} from "../../gen/clients/ts/invoices/v1/invoice_service";

const address = required("INVOICE_SERVICE_ADDR");
const company = required("INVOICE_COMPANY_ID");
const client = new InvoiceServiceClient(address, ChannelCredentials.createInsecure());
const auth = new Metadata();
auth.set("authorization", `Bearer ${required("INVOICE_SERVICE_KEY")}`);

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (tests/test_node_client.py sets it)`);
  return value;
}

// grpc-js unary calls take a callback; this turns one into a promise of the generated response type.
function unary<Res>(invoke: (cb: (err: ServiceError | null, res: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((err, res) => (err ? reject(err) : resolve(res)));
  });
}

type Line = { quantity: string; unitAmount: string; taxRate?: string };

// Each test bills its own customer, so its lists see its invoices only, whatever the database holds.
function draft(lines: Line[], customer = `node-${randomUUID()}`) {
  return Invoice.fromPartial({
    customerRef: { id: customer, companyName: "Node Customer" },
    currency: "USD",
    dueDate: "2030-05-24",
    lineItems: lines.map((l) => ({
      description: "Consulting",
      quantity: l.quantity,
      unitAmount: l.unitAmount,
      taxationItems: l.taxRate ? [{ name: "VAT", taxRate: l.taxRate }] : [],
    })),
  });
}

async function create(invoice: Invoice): Promise<Invoice> {
  const req = CreateInvoiceRequest.fromPartial({ companyId: company, invoice });
  const res = await unary<CreateInvoiceResponse>((cb) => client.createInvoice(req, auth, cb));
  assert.ok(res.invoice && res.pushOperation, "CreateInvoice returns the invoice and its push operation");
  return res.invoice;
}

test("create, finalize and pay an invoice: exact decimal strings and the lifecycle", async () => {
  const created = await create(draft([{ quantity: "2", unitAmount: "150.00", taxRate: "20" }]));
  assert.equal(created.status, InvoiceStatus.INVOICE_STATUS_DRAFT);
  assert.equal(created.subTotal, "300.00");
  assert.equal(created.totalTaxAmount, "60.00");
  assert.equal(created.totalAmount, "360.00");
  assert.equal(created.amountDue, "360.00");
  assert.ok(created.etag, "every invoice carries an etag");

  const finalize = FinalizeInvoiceRequest.fromPartial({ companyId: company, invoiceId: created.id });
  const finalized = await unary<FinalizeInvoiceResponse>((cb) => client.finalizeInvoice(finalize, auth, cb));
  assert.equal(finalized.invoice?.status, InvoiceStatus.INVOICE_STATUS_SUBMITTED);
  assert.match(finalized.invoice?.invoiceNumber ?? "", /\d/, "finalizing assigns a number");

  // Every invoiceId takes the id or the number, as the README documents.
  const pay = (invoiceId: string, totalAmount: string) =>
    unary<RecordPaymentResponse>((cb) =>
      client.recordPayment(
        RecordPaymentRequest.fromPartial({
          companyId: company,
          invoiceId,
          paymentAllocation: { allocation: { totalAmount }, payment: { id: `pay-${randomUUID()}` } },
        }),
        auth,
        cb,
      ),
    );
  const paid = await pay(finalized.invoice!.invoiceNumber, "100.10");
  assert.equal(paid.invoice?.id, created.id);
  assert.equal(paid.invoice?.status, InvoiceStatus.INVOICE_STATUS_PARTIALLY_PAID);
  assert.equal(paid.invoice?.amountDue, "259.90");
  assert.equal(paid.invoice?.paymentAllocations.length, 1);
  assert.equal(paid.invoice?.paymentAllocations[0].allocation?.totalAmount, "100.10");

  const settled = await pay(created.id, "259.90");
  assert.equal(settled.invoice?.status, InvoiceStatus.INVOICE_STATUS_PAID);
  assert.equal(settled.invoice?.paymentStatus, PaymentStatus.PAYMENT_STATUS_SUCCEEDED);
  assert.equal(settled.invoice?.amountDue, "0.00");
});

test("a filtered list streams every match in batches, in order, and nothing else", async () => {
  const customer = `node-${randomUUID()}`;
  const amounts = ["10.00", "20.00", "30.00", "40.00", "50.00", "60.00", "70.00"];
  for (const unitAmount of amounts) await create(draft([{ quantity: "1", unitAmount }], customer));
  await create(draft([{ quantity: "1", unitAmount: "99.00" }], `${customer}-other`));

  const stream = client.listInvoices(
    ListInvoicesRequest.fromPartial({
      companyId: company,
      filter: `customerRef.id = "${customer}" && totalAmount >= 20`,
      orderBy: "-totalAmount",
      pageSize: 2,
      includeTotal: true,
    }),
    auth,
  );
  const seen: string[] = [];
  let batches = 0;
  let total = -1;
  for await (const page of stream) {
    batches += 1;
    assert.ok(page.invoices.length <= 2, "each streamed message is one page of at most page_size");
    if (page.totalSize !== "0") total = Number(page.totalSize);
    for (const inv of page.invoices) {
      assert.equal(inv.customerRef?.id, customer);
      seen.push(inv.totalAmount);
    }
  }
  assert.deepEqual(seen, ["70.00", "60.00", "50.00", "40.00", "30.00", "20.00"]);
  assert.equal(batches, 3);
  assert.equal(total, 6);
});

test("an attachment uploads as a client stream and downloads identical, also from an offset", async () => {
  const inv = await create(draft([{ quantity: "1", unitAmount: "10.00" }]));
  const bytes = randomBytes(3 * 1024 * 1024 + 123);
  const uploaded = await new Promise<UploadAttachmentResponse>((resolve, reject) => {
    const call = client.uploadAttachment(auth, (err, res) => (err ? reject(err) : resolve(res)));
    call.write(
      UploadAttachmentRequest.fromPartial({
        metadata: { companyId: company, invoiceId: inv.id, name: "terms.pdf", contentType: "application/pdf" },
      }),
    );
    for (let at = 0; at < bytes.length; at += 256 * 1024) {
      call.write(UploadAttachmentRequest.fromPartial({ chunk: bytes.subarray(at, at + 256 * 1024) }));
    }
    call.end();
  });
  const attachment = uploaded.attachment!;
  assert.equal(attachment.name, "terms.pdf");
  assert.equal(attachment.fileSize, String(bytes.length));
  assert.equal(attachment.sha256, createHash("sha256").update(bytes).digest("hex"));

  async function download(offset: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    const stream = client.downloadAttachment(
      DownloadAttachmentRequest.fromPartial({ companyId: company, invoiceId: inv.id, attachmentId: attachment.id, offset: String(offset) }),
      auth,
    );
    for await (const msg of stream) parts.push(Buffer.from(msg.chunk));
    return Buffer.concat(parts);
  }
  assert.ok((await download(0)).equals(bytes), "downloaded bytes equal uploaded bytes");
  assert.ok((await download(1_000_000)).equals(bytes.subarray(1_000_000)), "a download resumes at an offset");
});

test("a rich error: INVALID_ARGUMENT with google.rpc.BadRequest naming each field", async () => {
  const bad = draft([{ quantity: "1", unitAmount: "12.5x" }]);
  bad.currencyRate = "NaN";
  const err = await create(bad).then(
    () => assert.fail("an invalid invoice must be refused"),
    (e: ServiceError) => e,
  );
  assert.equal(err.code, status.INVALID_ARGUMENT);
  const [details] = err.metadata.get("grpc-status-details-bin") as Buffer[];
  assert.ok(details, "the status carries details");
  const rich = Status.decode(details);
  assert.equal(rich.code, status.INVALID_ARGUMENT);
  const any = rich.details.find((d) => d.typeUrl === "type.googleapis.com/google.rpc.BadRequest");
  assert.ok(any, `BadRequest detail among ${rich.details.map((d) => d.typeUrl)}`);
  const fields = BadRequest.decode(any.value).fieldViolations.map((v) => v.field);
  assert.ok(fields.includes("invoice.line_items[0].unit_amount"), fields.join(", "));
  assert.ok(fields.includes("invoice.currency_rate"), fields.join(", "));

  const filter = "totalAmount = 12.5x";
  const listed = client.listInvoices(ListInvoicesRequest.fromPartial({ companyId: company, filter }), auth);
  const refused = await (async () => {
    try {
      for await (const _ of listed) void _;
    } catch (e) {
      return e as ServiceError;
    }
    return undefined;
  })();
  assert.equal(refused?.code, status.INVALID_ARGUMENT, "a bad filter is refused too");
});

test("no key, no access: UNAUTHENTICATED", async () => {
  const anonymous = await new Promise<ServiceError | null>((resolve) => {
    client.finalizeInvoice(
      FinalizeInvoiceRequest.fromPartial({ companyId: company, invoiceId: "whatever" }),
      new Metadata(),
      (err) => resolve(err),
    );
  });
  assert.equal(anonymous?.code, status.UNAUTHENTICATED);
});
