// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title FeeToken
/// @notice A fee-on-transfer ERC-20: every transfer (and transferFrom) of `amount` debits the sender
/// `amount`, credits the recipient `amount - fee` and `feeCollector` `fee`, where
/// fee = amount * feeBps / 10000 (rounded down), and emits Transfer(from, to, amount - fee) then
/// Transfer(from, feeCollector, fee). When the fee rounds to 0 only the first event is emitted. The receipt
/// therefore never carries Transfer(from, to, amount) for a nonzero fee: the case where the recipient got less
/// than the payout. Reverts like StandardToken on a short balance or allowance. Test fixture only.
contract FeeToken {
    string public name;
    string public symbol;
    uint8 public immutable decimals;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    /// @notice Fee in basis points of the amount (100 = 1%), at most 10000.
    uint256 public immutable feeBps;
    /// @notice Receives the fees.
    address public immutable feeCollector;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Mints `supply` (in base units) to the deployer. `feeBps` must be at most 10000.
    constructor(
        string memory name_,
        string memory symbol_,
        uint8 decimals_,
        uint256 supply,
        uint256 feeBps_,
        address feeCollector_
    ) {
        require(feeBps_ <= 10000, "fee above 100%");
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        feeBps = feeBps_;
        feeCollector = feeCollector_;
        totalSupply = supply;
        balanceOf[msg.sender] = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice The allowance is spent by the full `amount` (fee included). An allowance of
    /// type(uint256).max is never decreased.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= amount, "insufficient allowance");
            unchecked {
                allowance[from][msg.sender] = allowed - amount;
            }
        }
        _transfer(from, to, amount);
        return true;
    }

    function _transfer(address from, address to, uint256 amount) internal {
        uint256 balance = balanceOf[from];
        require(balance >= amount, "insufficient balance");
        // amount * feeBps cannot overflow for any amount <= balance <= totalSupply < 2**256 / 10000;
        // checked arithmetic reverts otherwise.
        uint256 fee = (amount * feeBps) / 10000;
        uint256 net = amount - fee;
        unchecked {
            balanceOf[from] = balance - amount;
            // Cannot overflow: the sum of all balances is totalSupply.
            balanceOf[to] += net;
            balanceOf[feeCollector] += fee;
        }
        emit Transfer(from, to, net);
        if (fee != 0) {
            emit Transfer(from, feeCollector, fee);
        }
    }
}
