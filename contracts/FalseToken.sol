// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title FalseToken
/// @notice An ERC-20 that signals failure by returning false instead of reverting, as some deployed tokens
/// do. `transfer` (and `transferFrom`) return false, with no state change and no event, when the amount
/// exceeds the balance (or allowance) or when `refuse` is set; otherwise they behave like StandardToken and
/// return true. With `refuse = true` a transfer is mined with receipt status 1, returns false and moves
/// nothing: the case the executor must not count as Executed. Test fixture only: anyone may set `refuse`.
contract FalseToken {
    string public name;
    string public symbol;
    uint8 public immutable decimals;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    /// @notice While true, every transfer and transferFrom returns false and does nothing.
    bool public refuse;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Mints `supply` (in base units) to the deployer.
    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        totalSupply = supply;
        balanceOf[msg.sender] = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    /// @notice Anyone may set or clear `refuse`.
    function setRefuse(bool refuse_) external {
        refuse = refuse_;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        return _transfer(msg.sender, to, amount);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Returns false (and changes nothing) when the allowance or the balance is short or `refuse`
    /// is set. An allowance of type(uint256).max is never decreased.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (refuse || allowed < amount || balanceOf[from] < amount) {
            return false;
        }
        if (allowed != type(uint256).max) {
            unchecked {
                allowance[from][msg.sender] = allowed - amount;
            }
        }
        return _transfer(from, to, amount);
    }

    function _transfer(address from, address to, uint256 amount) internal returns (bool) {
        uint256 balance = balanceOf[from];
        if (refuse || balance < amount) {
            return false;
        }
        unchecked {
            balanceOf[from] = balance - amount;
            // Cannot overflow: the sum of all balances is totalSupply.
            balanceOf[to] += amount;
        }
        emit Transfer(from, to, amount);
        return true;
    }
}
