// A Java client on the stubs `make clients` generates. tests/test_client_codegen.py compiles it with the
// stubs against Debian's protobuf and grpc-java jars and runs the part that needs no network: a request
// built, serialised and parsed back, and the service's method descriptors as grpc-java sees them.
import dev.invoiceservice.invoices.v1.CreateInvoiceRequest;
import dev.invoiceservice.invoices.v1.CustomerRef;
import dev.invoiceservice.invoices.v1.Invoice;
import dev.invoiceservice.invoices.v1.InvoiceServiceGrpc;
import dev.invoiceservice.invoices.v1.LineItem;

public final class InvoiceClientCheck {
  public static void main(String[] args) throws Exception {
    CreateInvoiceRequest request = CreateInvoiceRequest.newBuilder()
        .setCompanyId("acme")
        .setInvoice(Invoice.newBuilder()
            .setCustomerRef(CustomerRef.newBuilder().setId("java-customer"))
            .setCurrency("GBP")
            .addLineItems(LineItem.newBuilder().setQuantity("2").setUnitAmount("12.50")))
        .build();
    CreateInvoiceRequest parsed = CreateInvoiceRequest.parseFrom(request.toByteArray());
    System.out.println(parsed.getInvoice().getLineItems(0).getUnitAmount() + " "
        + InvoiceServiceGrpc.getCreateInvoiceMethod().getFullMethodName() + " "
        + InvoiceServiceGrpc.getServiceDescriptor().getMethods().size());
    // Compiles only if the generated blocking stub has the documented shape.
    Class<?> stub = InvoiceServiceGrpc.InvoiceServiceBlockingStub.class;
    System.out.println(stub.getMethod("createInvoice", CreateInvoiceRequest.class).getReturnType().getSimpleName());
  }
}
