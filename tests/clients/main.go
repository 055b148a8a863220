// A Go client on the stubs `make clients` generates: creates an invoice over a real channel and prints
// the totals the service computed. tests/test_client_codegen.py builds it in GOPATH mode and runs it.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	invoicesv1 "github.com/invoice-service/clients/go/invoices/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// Debian's grpc-go 1.33 marshals through golang/protobuf 1.3, which predates the protobuf API v2 that
// protoc-gen-go 1.28 generates; this codec marshals v2 messages directly. Module builds with current
// grpc-go do not need it.
type codecV2 struct{}

func (codecV2) Marshal(v interface{}) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }
func (codecV2) Unmarshal(data []byte, v interface{}) error {
	return proto.Unmarshal(data, v.(proto.Message))
}
func (codecV2) Name() string { return "proto" }

func init() { encoding.RegisterCodec(codecV2{}) }

func main() {
	conn, err := grpc.Dial(os.Args[1], grpc.WithInsecure(), grpc.WithBlock(), grpc.WithTimeout(10*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(2)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+os.Getenv("INVOICE_SERVICE_KEY"))
	res, err := invoicesv1.NewInvoiceServiceClient(conn).CreateInvoice(ctx, &invoicesv1.CreateInvoiceRequest{
		CompanyId: os.Args[2],
		Invoice: &invoicesv1.Invoice{
			CustomerRef: &invoicesv1.CustomerRef{Id: "go-customer"},
			Currency:    "EUR",
			LineItems: []*invoicesv1.LineItem{{
				Quantity: "3", UnitAmount: "19.99",
				TaxationItems: []*invoicesv1.TaxationItem{{Name: "VAT", TaxRate: "21"}},
			}},
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "create:", err)
		os.Exit(1)
	}
	inv := res.GetInvoice()
	fmt.Println(inv.GetStatus(), inv.GetSubTotal(), inv.GetTotalTaxAmount(), inv.GetTotalAmount())
}
