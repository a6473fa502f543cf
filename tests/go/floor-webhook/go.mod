module sts.dev/floor-webhook

go 1.19
